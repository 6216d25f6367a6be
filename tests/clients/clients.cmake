# Stock ZooKeeper clients against a private server: kazoo (test_kazoo.py), ZooKeeper's C client
# (c_client_test.c) and zkCli.sh (zkcli_test.sh), all driven by run.sh. Apache ZooKeeper 3.8 is
# the reference: every check passes against it; clients_vs_quorumfsd runs the same suites
# against quorumfsd.
find_library(QFS_ZOOKEEPER_MT zookeeper_mt)
find_path(QFS_ZOOKEEPER_INCLUDE zookeeper/zookeeper.h)
if(QFS_ZOOKEEPER_MT AND QFS_ZOOKEEPER_INCLUDE)
  add_executable(c_client_test ${CMAKE_CURRENT_LIST_DIR}/c_client_test.c)
  # THREADED selects the synchronous API of libzookeeper_mt.
  target_compile_definitions(c_client_test PRIVATE THREADED)
  target_include_directories(c_client_test PRIVATE ${QFS_ZOOKEEPER_INCLUDE})
  target_link_libraries(c_client_test PRIVATE ${QFS_ZOOKEEPER_MT} Threads::Threads)
  set_target_properties(c_client_test PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)

  add_test(NAME clients_vs_zookeeper
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh zk "" $<TARGET_FILE:c_client_test>)
  add_test(NAME clients_vs_quorumfsd
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh quorumfsd $<TARGET_FILE:quorumfsd>
            $<TARGET_FILE:c_client_test>)
  set_tests_properties(clients_vs_zookeeper clients_vs_quorumfsd PROPERTIES TIMEOUT 600)
else()
  message(WARNING "libzookeeper_mt (Debian: libzookeeper-mt-dev) not found: "
                  "c_client_test and the clients_vs_zookeeper test are not built")
endif()

# envi, srvr, stat, conf and mntr: the keys and formats ZooKeeper 3.8's tools and kazoo read, on
# a 3-member ZooKeeper ensemble (the control) and a 3-member quorumfsd ensemble, compared
# (docs/four-letter-words.md). One ensemble at a time, as the fault tests.
add_test(NAME four_letter_words
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_four_letter.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(four_letter_words PROPERTIES TIMEOUT 300 RESOURCE_LOCK qfs_ensemble)

# kazoo's own upstream suite (Debian's python3-kazoo ships it) vs ZooKeeper 3.8 and quorumfsd,
# 3 members each, both legs at once (about 2.5 minutes). It mostly waits, so it takes no
# ensemble lock: it shares the machine with the tests that do not run serially.
add_test(NAME kazoo_upstream
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kazoo_upstream.sh $<TARGET_FILE:quorumfsd>)
set_tests_properties(kazoo_upstream PROPERTIES TIMEOUT 1500)

# Quotas (docs/quotas.md): zkCli's setquota/listquota/delquota transcript and a kazoo story on
# ZooKeeper 3.8 (enforceQuota) and quorumfsd, compared; soft-limit WARNs; usage exact across a
# restart and a kill -9 with snapshots.
# SASL DIGEST-MD5 (docs/sasl.md): kazoo and zkCli.sh log in through a JAAS file, on ZooKeeper
# 3.8 (the control) and quorumfsd; ACLs of scheme sasl, superUser, refusals; same transcript.
add_test(NAME sasl_clients
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_sasl.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(sasl_clients PROPERTIES TIMEOUT 300)

add_test(NAME quota_clients
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_quota.py
          --quorumfsd $<TARGET_FILE:quorumfsd>)
set_tests_properties(quota_clients PROPERTIES TIMEOUT 300)
