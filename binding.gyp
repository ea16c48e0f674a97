{
  "variables": {
    "with_jpeg": "<!(node scripts/has-libjpeg.js)"
  },
  "targets": [
    {
      "target_name": "quiver_native",
      "sources": ["native/src/addon.cc", "native/src/json_numbers.cc", "native/src/preprocess.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-Wall", "-Wextra"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" },
      "conditions": [
        ["with_jpeg==1", {
          "sources": ["native/src/jpeg.cc"],
          "defines": ["QUIVER_WITH_JPEG"],
          "libraries": ["-ljpeg"]
        }]
      ]
    }
  ]
}
