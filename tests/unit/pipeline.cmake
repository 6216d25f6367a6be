qfs_test(pipeline_test ${CMAKE_CURRENT_LIST_DIR}/pipeline_test.cc)
target_link_libraries(pipeline_test PRIVATE qfs_replica)

qfs_test(config_test ${CMAKE_CURRENT_LIST_DIR}/config_test.cc)
target_link_libraries(config_test PRIVATE qfs_replica)

qfs_test(ensemble_pipeline_test ${CMAKE_CURRENT_LIST_DIR}/ensemble_pipeline_test.cc)
target_link_libraries(ensemble_pipeline_test PRIVATE qfs_replica)
