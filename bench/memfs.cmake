# memfs: a trivial in-memory FUSE filesystem (the FUSE round-trip limit; a stalling disk for
# the mount's no-quorum/interrupt tests).
find_package(PkgConfig REQUIRED)
pkg_check_modules(MEMFS_FUSE3 REQUIRED IMPORTED_TARGET fuse3)
add_executable(memfs memfs.cc)
target_link_libraries(memfs PRIVATE PkgConfig::MEMFS_FUSE3 Threads::Threads)
