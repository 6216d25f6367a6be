# Conformance on a real mount (docs/fuse.md, "Conformance"): differential POSIX cases against
# tmpfs, and an fsx-style data-integrity exerciser. Both need /dev/fuse and root, as tests/fuse.
add_executable(qfs_fsx ${CMAKE_CURRENT_LIST_DIR}/fsx.c)
add_test(NAME fuse_conformance COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/conformance_test.sh)
add_test(NAME fuse_fsx COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/fsx_test.sh)
set_tests_properties(fuse_conformance fuse_fsx PROPERTIES
  ENVIRONMENT "QUORUMFSD=$<TARGET_FILE:quorumfsd>;QFS_FSX=$<TARGET_FILE:qfs_fsx>" TIMEOUT 300)
