// The raw C baseline: the same TX and RX loops the TypeScript backend runs
// (same batch, frame and ring sizes, one copy per packet, one kick per
// batch), written directly in C on an XSK set up by the same TypeScript code.
// Used only by the benchmarks, as the local physical limit of one queue; its
// own addon so that nothing but the benchmarks loads it.
#include "../common/napi_util.h"

#include <linux/if_xdp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace xdpvm {
namespace {

struct Ring {
  uint32_t* producer;
  uint32_t* consumer;
  uint32_t* flags;
  uint8_t* desc;
  uint32_t mask;
  uint32_t size;
};

Ring GetRing(Napi::Object rings, const char* name) {
  Napi::Object r = rings.Get(name).As<Napi::Object>();
  Napi::ArrayBuffer ab = r.Get("buffer").As<Napi::ArrayBuffer>();
  Napi::Object off = r.Get("offsets").As<Napi::Object>();
  uint8_t* base = static_cast<uint8_t*>(ab.Data());
  Ring ring;
  ring.producer = reinterpret_cast<uint32_t*>(base + off.Get("producer").As<Napi::Number>().Uint32Value());
  ring.consumer = reinterpret_cast<uint32_t*>(base + off.Get("consumer").As<Napi::Number>().Uint32Value());
  ring.flags = reinterpret_cast<uint32_t*>(base + off.Get("flags").As<Napi::Number>().Uint32Value());
  ring.desc = base + off.Get("desc").As<Napi::Number>().Uint32Value();
  ring.size = r.Get("size").As<Napi::Number>().Uint32Value();
  ring.mask = ring.size - 1;
  return ring;
}

inline uint32_t LoadAcquire(uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
inline bool NeedsWakeup(const Ring& r) { return (__atomic_load_n(r.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP) != 0; }

// Moves as many pooled frames to the Fill ring as it has room for.
void RefillFromPool(Ring& fill, std::vector<uint64_t>& pool) {
  uint32_t fp = *fill.producer, fc = LoadAcquire(fill.consumer);
  uint32_t room = fill.size - (fp - fc);
  uint32_t k = room < pool.size() ? room : static_cast<uint32_t>(pool.size());
  for (uint32_t i = 0; i < k; i++) {
    reinterpret_cast<uint64_t*>(fill.desc)[(fp + i) & fill.mask] = pool.back();
    pool.pop_back();
  }
  if (k) StoreRelease(fill.producer, fp + k);
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// rawLoop({fd, umem, frameSize, mode: "tx"|"rx"|"fwd", batch, seconds, packet, rings})
//   -> {packets, bytes, kicks, seconds}
// For tx, packets are completions (frames the kernel has sent); for rx,
// frames taken off the Rx ring; for fwd, received frames put back on the Tx
// ring in place with their MACs swapped (testpmd's macswap), the C bound for
// a forwarding device. Blocks the calling thread for `seconds`.
Napi::Value RawLoop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  int fd = o.Get("fd").As<Napi::Number>().Int32Value();
  Napi::ArrayBuffer umemAb = o.Get("umem").As<Napi::ArrayBuffer>();
  uint8_t* umem = static_cast<uint8_t*>(umemAb.Data());
  uint64_t umemLen = umemAb.ByteLength();
  uint32_t frameSize = o.Get("frameSize").As<Napi::Number>().Uint32Value();
  std::string mode = o.Get("mode").As<Napi::String>().Utf8Value();
  bool tx = mode == "tx", fwd = mode == "fwd";
  if (!tx && !fwd && mode != "rx") throw Napi::RangeError::New(env, "rawLoop mode is tx, rx or fwd");
  uint32_t batch = o.Get("batch").As<Napi::Number>().Uint32Value();
  double seconds = o.Get("seconds").As<Napi::Number>().DoubleValue();
  Napi::Object rings = o.Get("rings").As<Napi::Object>();
  Ring fill = GetRing(rings, "fill"), comp = GetRing(rings, "completion"), rx = GetRing(rings, "rx"),
       txr = GetRing(rings, "tx");
  Napi::Uint8Array pkt = o.Get("packet").As<Napi::Uint8Array>();
  std::vector<uint8_t> packet(pkt.Data(), pkt.Data() + pkt.ByteLength());
  if (frameSize == 0 || batch == 0 || packet.size() > frameSize) throw Napi::RangeError::New(env, "bad rawLoop parameters");

  // Free-frame pool (LIFO), as in the TypeScript queue.
  uint32_t nframes = static_cast<uint32_t>(umemLen / frameSize);
  std::vector<uint64_t> pool;
  pool.reserve(nframes);
  for (uint32_t i = nframes; i > 0; i--) pool.push_back(static_cast<uint64_t>(i - 1) * frameSize);

  // Prime Fill, keeping frames back for Tx.
  uint32_t prime = fill.size < nframes - 1 ? fill.size : nframes - 1;
  uint32_t fprod = *fill.producer;
  for (uint32_t i = 0; i < prime; i++) {
    reinterpret_cast<uint64_t*>(fill.desc)[(fprod + i) & fill.mask] = pool.back();
    pool.pop_back();
  }
  StoreRelease(fill.producer, fprod + prime);

  uint8_t sink[4096];
  double packets = 0, bytes = 0, kicks = 0;
  double start = Now(), deadline = start + seconds;
  uint32_t iter = 0;
  for (;;) {
    if ((++iter & 1023) == 0 && Now() >= deadline) break;
    if (fwd) {
      // Sent frames go straight back to the Fill ring (whatever does not fit waits in the pool).
      uint32_t cprod = LoadAcquire(comp.producer), ccons = *comp.consumer;
      for (uint32_t i = ccons; i != cprod; i++) pool.push_back(reinterpret_cast<uint64_t*>(comp.desc)[i & comp.mask] & ~static_cast<uint64_t>(frameSize - 1));
      if (cprod != ccons) StoreRelease(comp.consumer, cprod);
      RefillFromPool(fill, pool);
      uint32_t rprod = LoadAcquire(rx.producer), rcons = *rx.consumer;
      uint32_t tprod = *txr.producer, tcons = LoadAcquire(txr.consumer);
      uint32_t n = rprod - rcons, troom = txr.size - (tprod - tcons);
      if (n > batch) n = batch;
      if (n > troom) n = troom;
      for (uint32_t i = 0; i < n; i++) {
        const xdp_desc* d = reinterpret_cast<const xdp_desc*>(rx.desc) + ((rcons + i) & rx.mask);
        uint64_t addr = d->addr;
        uint32_t len = d->len;
        if (addr + len > umemLen || len < 12) {
          pool.push_back(addr & ~static_cast<uint64_t>(frameSize - 1));
          continue;
        }
        uint8_t* f = umem + addr;
        uint8_t mac[6];
        memcpy(mac, f, 6);
        memcpy(f, f + 6, 6);
        memcpy(f + 6, mac, 6);
        xdp_desc* t = reinterpret_cast<xdp_desc*>(txr.desc) + (tprod & txr.mask);
        t->addr = addr;
        t->len = len;
        t->options = 0;
        tprod++;
        packets++;
        bytes += len;
      }
      if (n) StoreRelease(rx.consumer, rcons + n);
      if (tprod != *txr.producer) StoreRelease(txr.producer, tprod);
      if (NeedsWakeup(txr) && *txr.producer != LoadAcquire(txr.consumer)) {
        for (int i = 0; i < 65; i++) {
          kicks++;
          if (sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0 || errno != EAGAIN) break;
          if (*txr.producer == LoadAcquire(txr.consumer)) break;
        }
      }
      if (n == 0 && NeedsWakeup(fill)) {
        recvfrom(fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
        kicks++;
      }
    } else if (tx) {
      // Reclaim completions first.
      uint32_t cprod = LoadAcquire(comp.producer), ccons = *comp.consumer;
      uint32_t done = cprod - ccons;
      for (uint32_t i = 0; i < done; i++) pool.push_back(reinterpret_cast<uint64_t*>(comp.desc)[(ccons + i) & comp.mask]);
      if (done) StoreRelease(comp.consumer, ccons + done);
      packets += done;
      bytes += static_cast<double>(done) * packet.size();
      uint32_t tprod = *txr.producer, tcons = LoadAcquire(txr.consumer);
      uint32_t room = txr.size - (tprod - tcons);
      uint32_t k = batch;
      if (k > room) k = room;
      if (k > pool.size()) k = static_cast<uint32_t>(pool.size());
      for (uint32_t i = 0; i < k; i++) {
        uint64_t addr = pool.back();
        pool.pop_back();
        memcpy(umem + addr, packet.data(), packet.size());
        xdp_desc* d = reinterpret_cast<xdp_desc*>(txr.desc) + ((tprod + i) & txr.mask);
        d->addr = addr;
        d->len = static_cast<uint32_t>(packet.size());
        d->options = 0;
      }
      if (k) StoreRelease(txr.producer, tprod + k);
      // Copy-mode xmit sends at most 32 frames per call (EAGAIN: more left).
      if (NeedsWakeup(txr)) {
        for (int i = 0; i < 65; i++) {
          kicks++;
          if (sendto(fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0 || errno != EAGAIN) break;
          if (*txr.producer == LoadAcquire(txr.consumer)) break;
        }
      }
    } else {
      uint32_t rprod = LoadAcquire(rx.producer), rcons = *rx.consumer;
      uint32_t n = rprod - rcons;
      if (n > batch) n = batch;
      if (n == 0) {
        if (NeedsWakeup(fill)) {
          recvfrom(fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
          kicks++;
        }
        continue;
      }
      for (uint32_t i = 0; i < n; i++) {
        const xdp_desc* d = reinterpret_cast<const xdp_desc*>(rx.desc) + ((rcons + i) & rx.mask);
        uint32_t len = d->len < sizeof(sink) ? d->len : sizeof(sink);
        memcpy(sink, umem + d->addr, len);
        bytes += d->len;
        pool.push_back(d->addr & ~static_cast<uint64_t>(frameSize - 1));
      }
      StoreRelease(rx.consumer, rcons + n);
      packets += n;
      // Refill from the pool.
      RefillFromPool(fill, pool);
    }
  }
  double elapsed = Now() - start;
  Napi::Object r = Napi::Object::New(env);
  r.Set("packets", packets);
  r.Set("bytes", bytes);
  r.Set("kicks", kicks);
  r.Set("seconds", elapsed);
  return r;
}

}  // namespace

Napi::Object InitRawLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("rawLoop", Napi::Function::New(env, RawLoop));
  return exports;
}

}  // namespace xdpvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return xdpvm::InitRawLoop(env, exports); }
NODE_API_MODULE(raw_loop, Init)
