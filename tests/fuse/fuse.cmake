# The FUSE view (docs/fuse.md): real daemons, real mounts, real shell tools. They need /dev/fuse
# and root (or fusermount3), as on CI. Each test starts its own quorumfsd(s) on loopback with
# mounts under /tmp, and cleans up its processes (by PID) and mounts.
set(QFS_FUSE_ENV "QUORUMFSD=$<TARGET_FILE:quorumfsd>" "MEMFS=$<TARGET_FILE:memfs>")
# ctest kills a test that outlives its TIMEOUT with SIGKILL, which no cleanup survives (a timed
# out fuse_ensemble once left its 3 daemons, their mounts and 30 lock shells running). The
# 600 s tests get SIGTERM 30 s before that instead: their traps remove mounts and processes.
set(QFS_TERM_BEFORE_600 timeout -k 20 570)
add_test(NAME fuse_contract COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/contract_test.sh)
add_test(NAME fuse_watch COMMAND ${QFS_TERM_BEFORE_600} /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/watch_test.py
         --quorumfsd $<TARGET_FILE:quorumfsd>)
# Multi-shell recipes; with mount points as arguments they run over an ensemble's mounts.
add_test(NAME fuse_recipes COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/recipes_test.sh)
add_test(NAME fuse_faults COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/faults_test.sh)
set_tests_properties(fuse_contract fuse_watch fuse_recipes fuse_faults PROPERTIES
  ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 600)
# ACLs per local user (docs/fuse.md, "Identities and ACLs on the mount"): creates two Unix users.
add_test(NAME fuse_acl COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/acl_test.sh)
set_tests_properties(fuse_acl PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 600)
# Mount-heavy and timing-sensitive: not in parallel with each other.
set_tests_properties(fuse_recipes fuse_faults PROPERTIES RUN_SERIAL TRUE)

qfs_test(fusefs_unit_test ${CMAKE_CURRENT_LIST_DIR}/fusefs_unit_test.cc)
target_link_libraries(fusefs_unit_test PRIVATE qfs_fusefs)

# Issue 5 on a real 3-member ensemble (scripts/ensemble's library, with the link proxy): a mount
# on every member; the recipes over the 3 mounts, election across a kill -9 of a member, watches
# across members, @eph locks of a killed member, a member cut off from the quorum. One ensemble
# at a time (RESOURCE_LOCK qfs_ensemble, like tests/ensemble/ensemble.cmake).
add_test(NAME fuse_ensemble COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/ensemble_test.sh)
set_tests_properties(fuse_ensemble PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 600
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# kill -9 of a member while its mount echoes remote changes: the member must finish exiting
# (the mount's guard, fusefs/guard.h), its stale mount must not hang, and it must restart.
# The wedge it guards against needs the kill to land inside an echo: 8 rounds hit it most runs.
add_test(NAME fuse_kill COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kill_test.sh)
set_tests_properties(fuse_kill PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 300
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# Open files behave as on a local disk while they are open (docs/fuse.md, "Open files"): a file
# being created is visible at once, fstat/lseek report the handle's size, writes follow mv, and
# rm of an open file is for good; on one member and across a 3-member ensemble.
add_executable(openfile_probe ${CMAKE_CURRENT_LIST_DIR}/openfile_probe.c)
set_target_properties(openfile_probe PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
add_test(NAME fuse_openfile COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/openfile_test.sh)
set_tests_properties(fuse_openfile PROPERTIES
  ENVIRONMENT "${QFS_FUSE_ENV};OPENFILE_PROBE=$<TARGET_FILE:openfile_probe>" TIMEOUT 300
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# Appends and write errors (docs/fuse.md, "Appends", "Write errors") on a 3-member ensemble:
# 12 shells appending on 3 mounts, with and without a kill -9; EFBIG/EACCES at write(); builtin
# echo on a member without quorum exits non-zero and nothing appears once the quorum is back.
add_test(NAME fuse_append COMMAND ${QFS_TERM_BEFORE_600} bash ${CMAKE_CURRENT_LIST_DIR}/append_test.sh)
set_tests_properties(fuse_append PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 600
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# A follower's mount is checked with its caller's identity (docs/fuse.md, "Identities and ACLs
# on the mount"): two Unix users write through a follower's mount of a 3-member ensemble; kazoo
# on the leader reads back what got through.
add_test(NAME fuse_follower_acl COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/follower_acl_test.sh)
set_tests_properties(fuse_follower_acl PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 300
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# Read-only mode on the mount (docs/read-only.md): a member cut off by kill -9 of the other two
# keeps its mount readable, fails shell writes at the call with EROFS, and writes again after
# the heal.
add_test(NAME fuse_read_only COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/read_only_test.sh)
set_tests_properties(fuse_read_only PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 180
  RUN_SERIAL TRUE RESOURCE_LOCK qfs_ensemble)

# Hard quotas through the mount (docs/quotas.md): EDQUOT at mkdir, at echo > f's open and write.
add_test(NAME fuse_quota COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/quota_test.sh)
set_tests_properties(fuse_quota PROPERTIES ENVIRONMENT "${QFS_FUSE_ENV}" TIMEOUT 120)
