{
  "targets": [
    {
      "target_name": "mayfly_native",
      "sources": ["ecdsa.c", "crl.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-deprecated-declarations"]
    }
  ]
}
