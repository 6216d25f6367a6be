add_executable(crash_writer ${CMAKE_CURRENT_LIST_DIR}/crash_writer.cc)
target_link_libraries(crash_writer PRIVATE qfs_replica)

qfs_test(crash_test ${CMAKE_CURRENT_LIST_DIR}/crash_test.cc)
target_link_libraries(crash_test PRIVATE qfs_replica)
target_compile_definitions(crash_test PRIVATE CRASH_WRITER_PATH="$<TARGET_FILE:crash_writer>")
add_dependencies(crash_test crash_writer)

add_test(NAME recovery_cli_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/recovery_cli_test.sh $<TARGET_FILE:quorumfsd> $<TARGET_FILE:crash_writer>)
set_tests_properties(recovery_cli_test PROPERTIES TIMEOUT 300)
