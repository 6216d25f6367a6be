# cmake --install and the .deb (docs/install.md): the two binaries, a sample config, the systemd
# unit and the docs. scripts/package builds the package.
include(GNUInstallDirs)

install(TARGETS quorumfsd quorumfs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# With prefix /usr, GNUInstallDirs puts the config in /etc (FULL_SYSCONFDIR), as Debian wants.
set(QFS_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/quorumfs)
set(QFS_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(QFS_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/zoo.cfg DESTINATION ${QFS_CONFDIR})
configure_file(${CMAKE_CURRENT_LIST_DIR}/quorumfsd.service.in
               ${CMAKE_BINARY_DIR}/packaging/quorumfsd.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/quorumfsd.service DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/install.md
              ${CMAKE_SOURCE_DIR}/docs/tools.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME quorumfs)
set(CPACK_PACKAGE_VERSION 0.1.0)
set(CPACK_PACKAGE_CONTACT "quorumfs maintainers <quorumfs@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "replicated ZooKeeper-protocol coordination service with a FUSE view")
# The unit and the config path are fixed at configure time, so the package uses the same prefix
# (scripts/package configures /usr).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends from the libraries the binaries link, by dpkg-shlibdeps (libfuse3-3, libprotobuf32,
# libzookeeper-mt2, libjemalloc2, libssl3, libc6, libstdc++6 ...). fuse3 for fusermount3.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3, passwd")
# The config is a conffile: local edits survive upgrades.
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "${QFS_CONFDIR}/zoo.cfg\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/postinst ${CMAKE_CURRENT_LIST_DIR}/prerm
    ${CMAKE_CURRENT_LIST_DIR}/postrm ${CMAKE_BINARY_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
