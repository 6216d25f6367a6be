# The quorumfs command against a private server: Apache ZooKeeper 3.8 (Debian's `zookeeper`
# package), which proves the test encodes ZooKeeper's behaviour, and quorumfsd.
add_test(NAME cli_vs_zookeeper
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:quorumfs> zk)
add_test(NAME cli_vs_quorumfsd
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:quorumfs> quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(cli_vs_zookeeper cli_vs_quorumfsd PROPERTIES TIMEOUT 300)
