// sys addon: what the VMM, the I/O workers, the AF_XDP backend and the
// vhost-user server share below KVM and AF_XDP: fds, eventfd, epoll, thread
// affinity, memory mappings (guest RAM among them), the batched-copy registry,
// AF_UNIX sockets with fd passing, network namespaces and RLIMIT_MEMLOCK.
#pragma once
#include <napi.h>
#include "../common/napi_util.h"

namespace xdpvm {
void InitHost(Napi::Env env, Napi::Object exports);         // host.cc: fds, netns, memlock
void InitAffinity(Napi::Env env, Napi::Object exports);     // affinity.cc
void InitEventfd(Napi::Env env, Napi::Object exports);      // eventfd.cc
void InitEpoll(Napi::Env env, Napi::Object exports);        // epoll.cc
void InitGuestMemory(Napi::Env env, Napi::Object exports);  // guest_memory.cc
void InitCopyBatch(Napi::Env env, Napi::Object exports);    // copy_batch.cc
void InitUnixSocket(Napi::Env env, Napi::Object exports);   // unix_socket.cc
void InitCallRelay(Napi::Env env, Napi::Object exports);    // call_relay.cc
}  // namespace xdpvm
