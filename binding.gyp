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
      "target_name": "sys",
      "sources": [
        "native/common/mapping.cc",
        "native/sys/addon.cc",
        "native/sys/host.cc",
        "native/sys/affinity.cc",
        "native/sys/eventfd.cc",
        "native/sys/epoll.cc",
        "native/sys/guest_memory.cc",
        "native/sys/copy_batch.cc",
        "native/sys/unix_socket.cc",
        "native/sys/call_relay.cc"
      ]
    },
    {
      "target_name": "kvm",
      "sources": [
        "native/common/mapping.cc",
        "native/kvm/addon.cc",
        "native/kvm/system.cc",
        "native/kvm/vm.cc",
        "native/kvm/vcpu.cc",
        "native/kvm/kick.cc",
        "native/kvm/layout.cc"
      ]
    },
    {
      "target_name": "xsk",
      "sources": [
        "native/common/mapping.cc",
        "native/xsk/addon.cc",
        "native/xsk/xsk.cc",
        "native/xsk/bpf.cc",
        "native/xsk/netlink.cc"
      ]
    },
    {
      "target_name": "raw_loop",
      "sources": ["native/raw_loop/raw_loop.cc"]
    }
  ]
}
