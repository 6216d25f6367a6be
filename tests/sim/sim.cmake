# The deterministic ZAB simulator (see the header comment of sim.cc for the model and checks).
# Default ctest runs a few hundred seeds; a long run: QFS_SIM_SEEDS=1000000 ctest -R qfs_sim
# (or run build/<dir>/tests/qfs_sim --seeds N --first S directly).
add_executable(qfs_sim ${CMAKE_CURRENT_LIST_DIR}/sim.cc)
target_link_libraries(qfs_sim PRIVATE qfs_zab qfs_tree)
add_test(NAME qfs_sim_3 COMMAND qfs_sim --members 3 --seeds 200 --first 1)
add_test(NAME qfs_sim_5 COMMAND qfs_sim --members 5 --seeds 120 --first 100001)
set_tests_properties(qfs_sim_3 qfs_sim_5 PROPERTIES TIMEOUT 900 LABELS sim)
