qfs_test(zab_core_test ${CMAKE_CURRENT_LIST_DIR}/zab_core_test.cc)
target_link_libraries(zab_core_test PRIVATE qfs_zab)
