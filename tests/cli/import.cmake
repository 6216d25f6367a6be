# quorumfs import-zookeeper against Apache ZooKeeper 3.8 (docs/migration.md): the standalone run
# loads 100k nodes, the ensemble run 5k.
add_test(NAME import_zookeeper
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/import_zookeeper_test.py
          $<TARGET_FILE:quorumfs> $<TARGET_FILE:quorumfsd>)
add_test(NAME import_zookeeper_ensemble
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/import_zookeeper_test.py
          $<TARGET_FILE:quorumfs> $<TARGET_FILE:quorumfsd> --ensemble)
set_tests_properties(import_zookeeper import_zookeeper_ensemble PROPERTIES TIMEOUT 700)
set_tests_properties(import_zookeeper_ensemble PROPERTIES RESOURCE_LOCK qfs_ensemble)
add_test(NAME import_zookeeper_from_zk_ensemble
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/import_zk_ensemble_test.py
          $<TARGET_FILE:quorumfs> $<TARGET_FILE:quorumfsd>)
set_tests_properties(import_zookeeper_from_zk_ensemble PROPERTIES TIMEOUT 300
  RESOURCE_LOCK qfs_ensemble)
