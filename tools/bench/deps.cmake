# Libraries vtaserve-bench links; bench owners append theirs here.
target_link_libraries(vtaserve-bench PRIVATE absl::flags absl::flags_parse)
target_link_libraries(vtaserve-bench PRIVATE vtaserve::vta_backend)  # vta_sim_bench.cc
# cpu_bench.cc: the CPU backend, and oneDNN (+ its OpenMP runtime) as a
# benchmark-only peer, linked to vtaserve-bench alone.
target_link_libraries(vtaserve-bench PRIVATE vtaserve::cpu_backend dnnl gomp)
target_compile_definitions(vtaserve-bench PRIVATE VTASERVE_CPU_BENCH_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(vtaserve-bench PRIVATE vtaserve::vta_backend)  # vta_bench.cc
target_link_libraries(vtaserve-bench PRIVATE vtaserve::vta_backend vtaserve::cpu_backend)  # first_conv_bench.cc
