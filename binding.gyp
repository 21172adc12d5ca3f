{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "xsk",
      "sources": [
        "native/common/mapping.cc",
        "native/common/copy_batch.cc",
        "native/xsk/addon.cc",
        "native/xsk/xsk.cc",
        "native/xsk/bpf.cc",
        "native/xsk/netlink.cc",
        "native/xsk/host.cc",
        "native/xsk/raw_loop.cc",
        "native/xsk/unix_socket.cc"
      ]
    },
    {
      "target_name": "kvm",
      "sources": [
        "native/common/mapping.cc",
        "native/kvm/addon.cc",
        "native/kvm/affinity.cc",
        "native/kvm/system.cc",
        "native/kvm/vm.cc",
        "native/kvm/vcpu.cc",
        "native/kvm/memory.cc",
        "native/kvm/eventfd.cc",
        "native/kvm/epoll.cc",
        "native/kvm/kick.cc",
        "native/kvm/layout.cc"
      ]
    }
  ]
}
