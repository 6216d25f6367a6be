add_executable(store_bench store_bench.cc)
target_link_libraries(store_bench PRIVATE qfs_replica)
