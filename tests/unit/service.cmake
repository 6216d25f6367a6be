qfs_test(sessions_test ${CMAKE_CURRENT_LIST_DIR}/sessions_test.cc)
target_link_libraries(sessions_test PRIVATE qfs_service)
