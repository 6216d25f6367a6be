# Durable storage: framing, txn log, snapshots, epoch files.
foreach(t storage_frame_test storage_log_test storage_log_recovery_test storage_disk_full_test
          storage_snapshot_test storage_epoch_test)
  qfs_test(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.cc)
  target_link_libraries(${t} PRIVATE qfs_storage)
endforeach()
set_tests_properties(storage_disk_full_test PROPERTIES RUN_SERIAL TRUE)
