# Libraries vtaserve-bench links; bench owners append theirs here.
target_link_libraries(vtaserve-bench PRIVATE absl::flags absl::flags_parse)
