// Raw bpf(2) calls: maps, program load (instructions are assembled in
// TypeScript), BPF links for XDP, object info. No libbpf: nothing to fetch.
#include "xsk.h"
#include "../common/napi_util.h"

#include <fcntl.h>
#include <linux/bpf.h>

#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace xdpvm {
namespace {

long Bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

// The verifier gives up with EAGAIN when a signal is pending (a profiler's
// SIGPROF, a child's SIGCHLD): try again a few times, as libbpf does.
long LoadProgram(bpf_attr* attr) {
  long fd = -1;
  for (int attempt = 0; attempt < 5; attempt++) {
    fd = Bpf(BPF_PROG_LOAD, attr);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  return fd;
}

// After a failed load: loads once more with the verifier log on, only to
// explain the failure (a load that now succeeds is closed, not leaked).
void ExplainProgLoad(bpf_attr* attr, char* log, size_t size) {
  attr->log_buf = reinterpret_cast<uint64_t>(log);
  attr->log_size = static_cast<uint32_t>(size);
  attr->log_level = 1;
  long fd = LoadProgram(attr);
  if (fd >= 0) close(static_cast<int>(fd));
}

void CopyName(char (&dst)[BPF_OBJ_NAME_LEN], const std::string& src) {
  size_t n = src.size() < BPF_OBJ_NAME_LEN - 1 ? src.size() : BPF_OBJ_NAME_LEN - 1;
  memcpy(dst, src.data(), n);
}

// mapCreate(type, keySize, valueSize, maxEntries, name) -> fd
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  bpf_attr a{};
  a.map_type = static_cast<uint32_t>(ArgInt(info, 0, "type"));
  a.key_size = static_cast<uint32_t>(ArgInt(info, 1, "keySize"));
  a.value_size = static_cast<uint32_t>(ArgInt(info, 2, "valueSize"));
  a.max_entries = static_cast<uint32_t>(ArgInt(info, 3, "maxEntries"));
  CopyName(a.map_name, ArgString(info, 4, "name"));
  a.map_flags = 0;
  long fd = Bpf(BPF_MAP_CREATE, &a);
  if (fd < 0) throw ErrnoError(info.Env(), "bpf(BPF_MAP_CREATE)", errno);
  // The kernel does not set O_CLOEXEC on bpf fds created without it on old kernels; make sure.
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// mapUpdate(fd, key bytes, value bytes[, flags]): flags BPF_ANY (0, the
// default), BPF_NOEXIST (1: EEXIST if the slot is taken) or BPF_EXIST (2).
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  bpf_attr a{};
  a.map_fd = static_cast<uint32_t>(ArgInt(info, 0, "fd"));
  Bytes k = ArgBytes(info, 1, "key");
  Bytes v = ArgBytes(info, 2, "value");
  a.key = reinterpret_cast<uint64_t>(k.data);
  a.value = reinterpret_cast<uint64_t>(v.data);
  a.flags = info.Length() > 3 ? static_cast<uint64_t>(ArgInt(info, 3, "flags")) : static_cast<uint64_t>(BPF_ANY);
  if (Bpf(BPF_MAP_UPDATE_ELEM, &a) != 0) throw ErrnoError(info.Env(), "bpf(BPF_MAP_UPDATE_ELEM)", errno);
  return info.Env().Undefined();
}

// mapLookup(fd, key bytes, value out bytes) -> true if found
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  bpf_attr a{};
  a.map_fd = static_cast<uint32_t>(ArgInt(info, 0, "fd"));
  Bytes k = ArgBytes(info, 1, "key");
  Bytes v = ArgBytes(info, 2, "value");
  a.key = reinterpret_cast<uint64_t>(k.data);
  a.value = reinterpret_cast<uint64_t>(v.data);
  if (Bpf(BPF_MAP_LOOKUP_ELEM, &a) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    throw ErrnoError(info.Env(), "bpf(BPF_MAP_LOOKUP_ELEM)", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapDelete(fd, key bytes) -> true if it was there
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  bpf_attr a{};
  a.map_fd = static_cast<uint32_t>(ArgInt(info, 0, "fd"));
  Bytes k = ArgBytes(info, 1, "key");
  a.key = reinterpret_cast<uint64_t>(k.data);
  if (Bpf(BPF_MAP_DELETE_ELEM, &a) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    throw ErrnoError(info.Env(), "bpf(BPF_MAP_DELETE_ELEM)", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// progLoad(type, instructions bytes, license, name, expectedAttachType[, progFlags]) -> fd.
// progFlags: bpf_attr.prog_flags (BPF_F_XDP_HAS_FRAGS for a multi-buffer XDP program).
// On a verifier rejection the error message carries the verifier log.
Napi::Value ProgLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes insns = ArgBytes(info, 1, "instructions");
  std::string license = ArgString(info, 2, "license");
  std::vector<char> log(64 * 1024);
  bpf_attr a{};
  a.prog_type = static_cast<uint32_t>(ArgInt(info, 0, "type"));
  a.insns = reinterpret_cast<uint64_t>(insns.data);
  a.insn_cnt = static_cast<uint32_t>(insns.length / sizeof(bpf_insn));
  a.license = reinterpret_cast<uint64_t>(license.c_str());
  CopyName(a.prog_name, ArgString(info, 3, "name"));
  a.expected_attach_type = static_cast<uint32_t>(ArgInt(info, 4, "expectedAttachType"));
  if (info.Length() > 5 && info[5].IsNumber()) a.prog_flags = static_cast<uint32_t>(ArgInt(info, 5, "progFlags"));
  long fd = LoadProgram(&a);
  if (fd < 0) {
    int err = errno;
    ExplainProgLoad(&a, log.data(), log.size());
    Napi::Error e = ErrnoError(env, "bpf(BPF_PROG_LOAD)", err);
    e.Set("verifierLog", Napi::String::New(env, log.data()));
    throw e;
  }
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// linkCreate(progFd, targetIfindex, attachType, flags) -> link fd. For XDP the
// program stays attached exactly as long as this fd (or a dup of it) is open.
Napi::Value LinkCreate(const Napi::CallbackInfo& info) {
  bpf_attr a{};
  a.link_create.prog_fd = static_cast<uint32_t>(ArgInt(info, 0, "progFd"));
  a.link_create.target_ifindex = static_cast<uint32_t>(ArgInt(info, 1, "ifindex"));
  a.link_create.attach_type = static_cast<uint32_t>(ArgInt(info, 2, "attachType"));
  a.link_create.flags = static_cast<uint32_t>(ArgInt(info, 3, "flags"));
  long fd = Bpf(BPF_LINK_CREATE, &a);
  if (fd < 0) throw ErrnoError(info.Env(), "bpf(BPF_LINK_CREATE)", errno);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// progId(progFd) -> the kernel's id of a loaded program.
Napi::Value ProgId(const Napi::CallbackInfo& info) {
  bpf_prog_info pi{};
  bpf_attr a{};
  a.info.bpf_fd = static_cast<uint32_t>(ArgInt(info, 0, "progFd"));
  a.info.info_len = sizeof(pi);
  a.info.info = reinterpret_cast<uint64_t>(&pi);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) throw ErrnoError(info.Env(), "bpf(BPF_OBJ_GET_INFO_BY_FD)", errno);
  return Napi::Number::New(info.Env(), pi.id);
}

// objPin(fd, path): pins a map, program or link at a bpffs path.
Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 1, "path");
  bpf_attr a{};
  a.bpf_fd = static_cast<uint32_t>(ArgInt(info, 0, "fd"));
  a.pathname = reinterpret_cast<uint64_t>(path.c_str());
  if (Bpf(BPF_OBJ_PIN, &a) != 0) throw ErrnoError(info.Env(), "bpf(BPF_OBJ_PIN)", errno);
  return info.Env().Undefined();
}

// objGet(path, fileFlags) -> fd of the object pinned there (fileFlags:
// 0 read-write, BPF_F_RDONLY, BPF_F_WRONLY; the pin's file mode decides).
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  bpf_attr a{};
  a.pathname = reinterpret_cast<uint64_t>(path.c_str());
  a.file_flags = static_cast<uint32_t>(ArgInt(info, 1, "fileFlags"));
  long fd = Bpf(BPF_OBJ_GET, &a);
  if (fd < 0) throw ErrnoError(info.Env(), "bpf(BPF_OBJ_GET)", errno);
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// mapInfo(mapFd) -> { type, id, keySize, valueSize, maxEntries, flags, name }.
// The caller makes sure the fd is a map: the kernel fills the struct of the fd's kind.
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map_info mi{};
  bpf_attr a{};
  a.info.bpf_fd = static_cast<uint32_t>(ArgInt(info, 0, "mapFd"));
  a.info.info_len = sizeof(mi);
  a.info.info = reinterpret_cast<uint64_t>(&mi);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) throw ErrnoError(env, "bpf(BPF_OBJ_GET_INFO_BY_FD)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  o.Set("name", Napi::String::New(env, std::string(mi.name, strnlen(mi.name, sizeof(mi.name)))));
  return o;
}

// linkInfo(linkFd) -> { type, id, progId, ifindex } (ifindex: XDP links only, else 0).
Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_link_info li{};
  bpf_attr a{};
  a.info.bpf_fd = static_cast<uint32_t>(ArgInt(info, 0, "linkFd"));
  a.info.info_len = sizeof(li);
  a.info.info = reinterpret_cast<uint64_t>(&li);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) throw ErrnoError(env, "bpf(BPF_OBJ_GET_INFO_BY_FD)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, li.type));
  o.Set("id", Napi::Number::New(env, li.id));
  o.Set("progId", Napi::Number::New(env, li.prog_id));
  o.Set("ifindex", Napi::Number::New(env, li.type == BPF_LINK_TYPE_XDP ? li.xdp.ifindex : 0));
  return o;
}

// xdpAttachAsync(instructions, license, name, ifindex, flags[][, progFlags]) -> Promise<{ progFd, linkFd, flags }>: loads
// an XDP program and attaches it through a BPF link, trying each `flags` in turn (native, then skb), on the
// thread pool. Both calls can take tens of ms (the verifier; the link waits for RCU grace periods in the
// driver), which the caller spends on the rest of its set-up. Rejects with the errno of the load (with the
// verifier log) or of the last attach.
class XdpAttachWorker : public Napi::AsyncWorker {
 public:
  XdpAttachWorker(Napi::Env env, std::vector<uint8_t> insns, std::string license, std::string name, int ifindex, std::vector<uint32_t> flags,
                  uint32_t progFlags)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), insns_(std::move(insns)), license_(std::move(license)),
        name_(std::move(name)), ifindex_(ifindex), flags_(std::move(flags)), progFlags_(progFlags) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    bpf_attr a{};
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insns = reinterpret_cast<uint64_t>(insns_.data());
    a.insn_cnt = static_cast<uint32_t>(insns_.size() / sizeof(bpf_insn));
    a.license = reinterpret_cast<uint64_t>(license_.c_str());
    CopyName(a.prog_name, name_);
    a.expected_attach_type = BPF_XDP;
    a.prog_flags = progFlags_;
    long fd = LoadProgram(&a);
    if (fd < 0) {
      err_ = errno;
      step_ = "bpf(BPF_PROG_LOAD)";
      log_.assign(64 * 1024, '\0');
      ExplainProgLoad(&a, &log_[0], log_.size());
      return;
    }
    prog_ = static_cast<int>(fd);
    fcntl(prog_, F_SETFD, FD_CLOEXEC);
    for (uint32_t f : flags_) {
      bpf_attr l{};
      l.link_create.prog_fd = static_cast<uint32_t>(prog_);
      l.link_create.target_ifindex = static_cast<uint32_t>(ifindex_);
      l.link_create.attach_type = BPF_XDP;
      l.link_create.flags = f;
      long lfd = Bpf(BPF_LINK_CREATE, &l);
      if (lfd >= 0) {
        link_ = static_cast<int>(lfd);
        fcntl(link_, F_SETFD, FD_CLOEXEC);
        used_ = f;
        return;
      }
      err_ = errno;
    }
    step_ = "bpf(BPF_LINK_CREATE)";
    close(prog_);
    prog_ = -1;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (link_ < 0) {
      Napi::Error e = ErrnoError(env, step_, err_ != 0 ? err_ : EINVAL);
      if (!log_.empty()) e.Set("verifierLog", Napi::String::New(env, log_.c_str()));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("progFd", Napi::Number::New(env, prog_));
    o.Set("linkFd", Napi::Number::New(env, link_));
    o.Set("flags", Napi::Number::New(env, used_));
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override {
    if (link_ >= 0) close(link_);
    if (prog_ >= 0) close(prog_);
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> insns_;
  std::string license_;
  std::string name_;
  int ifindex_;
  std::vector<uint32_t> flags_;
  uint32_t progFlags_;
  int prog_ = -1;
  int link_ = -1;
  uint32_t used_ = 0;
  int err_ = 0;
  const char* step_ = "";
  std::string log_;
};

Napi::Value XdpAttachAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes insns = ArgBytes(info, 0, "instructions");
  std::string license = ArgString(info, 1, "license");
  std::string name = ArgString(info, 2, "name");
  int ifindex = ArgInt(info, 3, "ifindex");
  if (info.Length() < 5 || !info[4].IsArray()) throw Napi::TypeError::New(env, "expected an array of attach flags");
  Napi::Array fa = info[4].As<Napi::Array>();
  std::vector<uint32_t> flags;
  for (uint32_t i = 0; i < fa.Length(); i++) flags.push_back(fa.Get(i).As<Napi::Number>().Uint32Value());
  if (flags.empty()) throw Napi::RangeError::New(env, "no attach flags");
  uint32_t progFlags = info.Length() > 5 && info[5].IsNumber() ? static_cast<uint32_t>(ArgInt(info, 5, "progFlags")) : 0;
  auto* w = new XdpAttachWorker(env, std::vector<uint8_t>(insns.data, insns.data + insns.length), license, name, ifindex, std::move(flags),
                                progFlags);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitBpf(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpAttachAsync", Napi::Function::New(env, XdpAttachAsync));
  exports.Set("bpfMapCreate", Napi::Function::New(env, MapCreate));
  exports.Set("bpfMapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("bpfMapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("bpfMapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("bpfProgLoad", Napi::Function::New(env, ProgLoad));
  exports.Set("bpfLinkCreate", Napi::Function::New(env, LinkCreate));
  exports.Set("bpfProgId", Napi::Function::New(env, ProgId));
  exports.Set("bpfObjPin", Napi::Function::New(env, ObjPin));
  exports.Set("bpfObjGet", Napi::Function::New(env, ObjGet));
  exports.Set("bpfMapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("bpfLinkInfo", Napi::Function::New(env, LinkInfo));
}

}  // namespace xdpvm
