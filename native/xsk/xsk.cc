// AF_XDP socket syscalls: create, register a UMEM, size and map the four
// rings, bind, and the per-batch kicks. Ring servicing lives in TypeScript.
#include "xsk.h"
#include "../common/mapping.h"
#include "../common/napi_util.h"

#include <linux/if_xdp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
// Multi-buffer (Linux >= 6.6 uapi; Debian 12's headers are older).
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

namespace xdpvm {
namespace {

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(info.Env(), "socket(AF_XDP)", errno);
  return Napi::Number::New(info.Env(), fd);
}

// socketDomain(fd): SO_DOMAIN of a socket, or -errno (ENOTSOCK, EBADF) for anything else.
Napi::Value SocketDomain(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int domain = 0;
  socklen_t len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), domain);
}

// umemRegister(fd, umem ArrayBuffer, frameSize, headroom[, flags]): flags is
// xdp_umem_reg.flags (XDP_UMEM_UNALIGNED_CHUNK_FLAG for guest RAM as the UMEM).
Napi::Value UmemRegister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  if (info.Length() < 2 || !info[1].IsArrayBuffer()) throw Napi::TypeError::New(env, "expected the UMEM ArrayBuffer");
  Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
  xdp_umem_reg reg{};
  reg.addr = reinterpret_cast<uint64_t>(ab.Data());
  reg.len = ab.ByteLength();
  reg.chunk_size = static_cast<uint32_t>(ArgInt(info, 2, "frameSize"));
  reg.headroom = static_cast<uint32_t>(ArgInt(info, 3, "headroom"));
  reg.flags = info.Length() > 4 && info[4].IsNumber() ? static_cast<uint32_t>(ArgInt(info, 4, "flags")) : 0;
  if (setsockopt(fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) != 0) throw ErrnoError(env, "setsockopt(XDP_UMEM_REG)", errno);
  return env.Undefined();
}

// setRingSize(fd, ring, entries): ring is one of RING_* (see xsk.h).
Napi::Value SetRingSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int ring = ArgInt(info, 1, "ring");
  int entries = ArgInt(info, 2, "entries");
  static const int opts[] = {XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING, XDP_TX_RING};
  static const char* names[] = {"setsockopt(XDP_UMEM_FILL_RING)", "setsockopt(XDP_UMEM_COMPLETION_RING)",
                                "setsockopt(XDP_RX_RING)", "setsockopt(XDP_TX_RING)"};
  if (ring < 0 || ring > 3) throw Napi::RangeError::New(env, "unknown ring");
  if (setsockopt(fd, SOL_XDP, opts[ring], &entries, sizeof(entries)) != 0) throw ErrnoError(env, names[ring], errno);
  return env.Undefined();
}

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9  // Linux 6.17 uapi; older headers lack it
#endif

// setTxBudget(fd, frames): how many Tx descriptors one copy-mode sendto may
// send (XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17, 32..Tx ring size; the kernel's
// default is 32). Returns 0 or -errno (ENOPROTOOPT: an older kernel).
Napi::Value SetTxBudget(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  unsigned int budget = static_cast<unsigned int>(ArgInt(info, 1, "frames"));
  if (setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget)) != 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), 0);
}

Napi::Object Offsets(Napi::Env env, const xdp_ring_offset& o) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("producer", Napi::Number::New(env, static_cast<double>(o.producer)));
  r.Set("consumer", Napi::Number::New(env, static_cast<double>(o.consumer)));
  r.Set("desc", Napi::Number::New(env, static_cast<double>(o.desc)));
  r.Set("flags", Napi::Number::New(env, static_cast<double>(o.flags)));
  return r;
}

// mmapOffsets(fd): where producer, consumer, flags and descriptors sit in each ring's mapping.
Napi::Value MmapOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  xdp_mmap_offsets off{};
  socklen_t len = sizeof(off);
  if (getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) throw ErrnoError(env, "getsockopt(XDP_MMAP_OFFSETS)", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("fill", Offsets(env, off.fr));
  r.Set("completion", Offsets(env, off.cr));
  r.Set("rx", Offsets(env, off.rx));
  r.Set("tx", Offsets(env, off.tx));
  return r;
}

// mapRing(fd, ring, bytes): maps one ring at its fixed page offset.
Napi::Value MapRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int ring = ArgInt(info, 1, "ring");
  int64_t bytes = ArgInt64(info, 2, "bytes");
  static const off_t pgoff[] = {static_cast<off_t>(XDP_UMEM_PGOFF_FILL_RING),
                                static_cast<off_t>(XDP_UMEM_PGOFF_COMPLETION_RING),
                                static_cast<off_t>(XDP_PGOFF_RX_RING), static_cast<off_t>(XDP_PGOFF_TX_RING)};
  if (ring < 0 || ring > 3 || bytes <= 0) throw Napi::RangeError::New(env, "bad ring mapping");
  void* p = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff[ring]);
  if (p == MAP_FAILED) throw ErrnoError(env, "mmap(xsk ring)", errno);
  return WrapMapping(env, p, static_cast<size_t>(bytes));
}

// bind(fd, ifindex, queueId, flags[, sharedUmemFd])
Napi::Value Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sockaddr_xdp sxdp{};
  sxdp.sxdp_family = AF_XDP;
  int fd = ArgInt(info, 0, "fd");
  sxdp.sxdp_ifindex = static_cast<uint32_t>(ArgInt(info, 1, "ifindex"));
  sxdp.sxdp_queue_id = static_cast<uint32_t>(ArgInt(info, 2, "queueId"));
  sxdp.sxdp_flags = static_cast<uint16_t>(ArgInt(info, 3, "flags"));
  if (info.Length() > 4 && info[4].IsNumber()) sxdp.sxdp_shared_umem_fd = static_cast<uint32_t>(ArgInt(info, 4, "sharedUmemFd"));
  if (bind(fd, reinterpret_cast<sockaddr*>(&sxdp), sizeof(sxdp)) != 0) throw ErrnoError(env, "bind(AF_XDP)", errno);
  return env.Undefined();
}

// kickTx(fd): makes the kernel transmit what is on the Tx ring (copy/skb
// modes only send inside a syscall). Returns 0 or -errno; the transient
// errors (EAGAIN, EBUSY, ENOBUFS, ENETDOWN) are the caller's to count.
Napi::Value KickTx(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  ssize_t r = sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// kickRx(fd): wakes the driver to refill from the Fill ring.
Napi::Value KickRx(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  ssize_t r = recvfrom(fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// poll(fd, events, timeoutMs): revents, 0 on timeout, -errno on failure.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  pollfd p{};
  p.fd = ArgInt(info, 0, "fd");
  p.events = static_cast<short>(ArgInt(info, 1, "events"));
  int timeout = ArgInt(info, 2, "timeoutMs");
  int r = poll(&p, 1, timeout);
  if (r < 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), r == 0 ? 0 : p.revents);
}

// statistics(fd): the kernel's XDP_STATISTICS counters.
Napi::Value Statistics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  xdp_statistics st{};
  socklen_t len = sizeof(st);
  if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) throw ErrnoError(env, "getsockopt(XDP_STATISTICS)", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("rxDropped", static_cast<double>(st.rx_dropped));
  r.Set("rxInvalidDescs", static_cast<double>(st.rx_invalid_descs));
  r.Set("txInvalidDescs", static_cast<double>(st.tx_invalid_descs));
  r.Set("rxRingFull", static_cast<double>(st.rx_ring_full));
  r.Set("rxFillRingEmpty", static_cast<double>(st.rx_fill_ring_empty_descs));
  r.Set("txRingEmpty", static_cast<double>(st.tx_ring_empty_descs));
  return r;
}

// isZeroCopy(fd): whether the bound socket got zero-copy (XDP_OPTIONS).
Napi::Value IsZeroCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  xdp_options opts{};
  socklen_t len = sizeof(opts);
  if (getsockopt(fd, SOL_XDP, XDP_OPTIONS, &opts, &len) != 0) throw ErrnoError(env, "getsockopt(XDP_OPTIONS)", errno);
  return Napi::Boolean::New(env, (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0);
}

}  // namespace

void InitXsk(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket));
  exports.Set("socketDomain", Napi::Function::New(env, SocketDomain));
  exports.Set("umemRegister", Napi::Function::New(env, UmemRegister));
  exports.Set("setRingSize", Napi::Function::New(env, SetRingSize));
  exports.Set("setTxBudget", Napi::Function::New(env, SetTxBudget));
  exports.Set("mmapOffsets", Napi::Function::New(env, MmapOffsets));
  exports.Set("mapRing", Napi::Function::New(env, MapRing));
  exports.Set("bind", Napi::Function::New(env, Bind));
  exports.Set("kickTx", Napi::Function::New(env, KickTx));
  exports.Set("kickRx", Napi::Function::New(env, KickRx));
  exports.Set("poll", Napi::Function::New(env, Poll));
  exports.Set("statistics", Napi::Function::New(env, Statistics));
  exports.Set("isZeroCopy", Napi::Function::New(env, IsZeroCopy));
  Napi::Object c = Napi::Object::New(env);
  c.Set("AF_XDP", AF_XDP);
  c.Set("XDP_SHARED_UMEM", XDP_SHARED_UMEM);
  c.Set("XDP_COPY", XDP_COPY);
  c.Set("XDP_ZEROCOPY", XDP_ZEROCOPY);
  c.Set("XDP_USE_NEED_WAKEUP", XDP_USE_NEED_WAKEUP);
  c.Set("XDP_RING_NEED_WAKEUP", XDP_RING_NEED_WAKEUP);
  c.Set("XDP_PACKET_HEADROOM", 256);
  c.Set("XDP_UMEM_UNALIGNED_CHUNK_FLAG", XDP_UMEM_UNALIGNED_CHUNK_FLAG);
  c.Set("XDP_USE_SG", XDP_USE_SG);
  c.Set("XDP_PKT_CONTD", XDP_PKT_CONTD);
  c.Set("POLLIN", POLLIN);
  c.Set("POLLOUT", POLLOUT);
  c.Set("POLLERR", POLLERR);
  exports.Set("constants", c);
}

}  // namespace xdpvm
