{
  "targets": [
    {
      "target_name": "commitlog",
      "sources": [
        "native/addon.cc",
        "native/mapping.cc",
        "native/file.cc",
        "native/batch-scan.cc",
        "native/crc32c.cc",
        "native/sendfile.cc",
        "native/residency.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags": ["-O2"]
    }
  ]
}
