# The quorumfs command against a private server. Today that is Apache ZooKeeper 3.8 (Debian's
# `zookeeper` package); to test against quorumfsd instead, pass
#   quorumfsd $<TARGET_FILE:quorumfsd>
# in place of `zk` (and add `quorumfsd` to the dependencies).
add_test(NAME cli_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:quorumfs> zk)
set_tests_properties(cli_test PROPERTIES TIMEOUT 300)
