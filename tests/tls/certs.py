"""Certificates for the TLS tests, made with Debian's openssl (docs/tls.md shows the same steps).

    certs = make_certs(dir)   # dict of paths

A CA; a server certificate for 127.0.0.1 (IP SAN); client certificates client1, client2 and
admin (subjects CN=<name>,OU=dev,O=qfs); members m1..m3 (IP SAN 127.0.0.1, for peer links,
and m2b: a second certificate for member 2, for rotation); a stranger CA with a client
certificate of the same subject as client1 and a self-signed member certificate. Every
"<name>.pem" is a key store (key, certificate, CA), "<name>.key"/"<name>.crt" the parts.
"""

import os
import subprocess

SUBJECT = "/O=qfs/OU=dev/CN=%s"


def dn(name):
    """The x509 id of a client certificate made here (RFC 2253, as ZooKeeper prints it)."""
    return "CN=%s,OU=dev,O=qfs" % name


def _run(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ca(d, name):
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/O=qfs/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".pem",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, ca, ip_san=True):
    _run("req", "-newkey", "rsa:2048", "-nodes", "-subj", SUBJECT % name,
         "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
        if ip_san:
            f.write("subjectAltName=IP:127.0.0.1\n")
    _run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
         "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + ".crt", cwd=d)
    _keystore(d, name, ca)


def _keystore(d, name, ca):
    with open(os.path.join(d, name + ".pem"), "w") as out:
        for part in (name + ".key", name + ".crt", ca + ".pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())


def make_certs(d, members=False):
    _ca(d, "ca")
    _ca(d, "stranger-ca")
    _leaf(d, "server", "ca")
    for c in ("client1", "client2", "admin"):
        _leaf(d, c, "ca", ip_san=False)
    # The stranger: the same subject as client1, from a CA nobody trusts.
    _run("req", "-newkey", "rsa:2048", "-nodes", "-subj", SUBJECT % "client1",
         "-keyout", "stranger.key", "-out", "stranger.csr", cwd=d)
    _run("x509", "-req", "-in", "stranger.csr", "-CA", "stranger-ca.pem", "-CAkey",
         "stranger-ca.key", "-CAcreateserial", "-days", "2", "-out", "stranger.crt", cwd=d)
    _keystore(d, "stranger", "stranger-ca")
    if members:
        for m in ("m1", "m2", "m3", "m2b"):
            _leaf(d, m, "ca")
        # A self-signed member certificate for 127.0.0.1.
        _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", SUBJECT % "m9", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", "selfsigned.key", "-out", "selfsigned.crt", cwd=d)
        with open(os.path.join(d, "selfsigned.pem"), "w") as out:
            for part in ("selfsigned.key", "selfsigned.crt"):
                with open(os.path.join(d, part)) as f:
                    out.write(f.read())
    return {n: os.path.join(d, n) for n in os.listdir(d)}
