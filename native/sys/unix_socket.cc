// AF_UNIX stream sockets with file-descriptor passing (SCM_RIGHTS), for the
// vhost-user server and its test front end, a connected pair (a hosted vCPU's
// exit channel), plus the few fd helpers a
// vhost-user back end needs on fds it receives (fstat/seals, non-blocking,
// shared mappings without pre-faulting).
//
// Blocking waits (accept, recv) run on the libuv thread pool as promises and
// poll a caller-supplied wake eventfd too, so that closing a server or a
// connection never leaves a thread parked in the kernel.
#include "sys.h"
#include "../common/mapping.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <vector>

namespace xdpvm {
namespace {

constexpr size_t kMaxRecvBytes = 1 << 16;
constexpr int kMaxRecvFds = 32;

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

bool FillAddress(const std::string& path, sockaddr_un* sa, socklen_t* len) {
  if (path.empty() || path.size() >= sizeof(sa->sun_path)) return false;
  *sa = sockaddr_un{};
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// unixListen(path, backlog) -> fd: a non-blocking, close-on-exec listening
// socket. A stale socket file at `path` is removed first; any other kind of
// file there is an error (EEXIST), never deleted.
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int backlog = ArgInt(info, 1, "backlog");
  sockaddr_un sa;
  socklen_t len;
  if (!FillAddress(path, &sa, &len)) throw ErrnoError(env, ("socket path '" + path + "'").c_str(), ENAMETOOLONG);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw ErrnoError(env, ("'" + path + "' exists and is not a socket").c_str(), EEXIST);
    if (unlink(path.c_str()) != 0) throw ErrnoError(env, ("unlink(" + path + ")").c_str(), errno);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw ErrnoError(env, "socket(AF_UNIX)", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int e = errno;
    close(fd);
    throw ErrnoError(env, ("bind(" + path + ")").c_str(), e);
  }
  if (listen(fd, backlog > 0 ? backlog : 1) != 0) {
    int e = errno;
    close(fd);
    unlink(path.c_str());
    throw ErrnoError(env, "listen", e);
  }
  return Napi::Number::New(env, fd);
}

// unixConnect(path) -> fd: a connected, non-blocking, close-on-exec socket.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  sockaddr_un sa;
  socklen_t len;
  if (!FillAddress(path, &sa, &len)) throw ErrnoError(env, ("socket path '" + path + "'").c_str(), ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, "socket(AF_UNIX)", errno);
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&sa), len);
  while (r != 0 && errno == EINTR);
  if (r != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    throw ErrnoError(env, ("connect(" + path + ")").c_str(), e);
  }
  return Napi::Number::New(env, fd);
}

// unixAccept(listenFd) -> fd (non-blocking, close-on-exec) or -errno (-EAGAIN: nobody waiting).
int AcceptOne(int listen_fd) {
  int fd;
  do fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), AcceptOne(ArgInt(info, 0, "fd")));
}

// One recvmsg: bytes and SCM_RIGHTS fds (close-on-exec). 0 bytes = EOF.
// Truncated data or control data (MSG_CTRUNC: more fds than room) is an
// error, and every fd that did arrive is closed.
struct RecvResult {
  int err = 0;  // errno, 0 on success
  bool eof = false;
  bool woken = false;
  std::vector<uint8_t> bytes;
  std::vector<int> fds;
};

void RecvOnce(int fd, size_t max_bytes, int max_fds, RecvResult* out) {
  out->bytes.resize(max_bytes);
  iovec iov{out->bytes.data(), max_bytes};
  const size_t space = CMSG_SPACE(sizeof(int) * static_cast<size_t>(max_fds > 0 ? max_fds : 1));
  std::vector<uint8_t> control(space, 0);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    out->err = errno;
    out->bytes.clear();
    return;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const uint8_t* data = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int v;
      memcpy(&v, data + i * sizeof(int), sizeof(int));
      out->fds.push_back(v);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || static_cast<int>(out->fds.size()) > max_fds) {
    CloseAll(out->fds);
    out->fds.clear();
    out->bytes.clear();
    out->err = EMSGSIZE;  // more fds than the caller accepts: they were closed
    return;
  }
  out->bytes.resize(static_cast<size_t>(n));
  out->eof = n == 0;
}

// Waits until `fd` is readable (or hung up) or `wake_fd` is readable. Returns
// 1 when fd is ready, 0 when woken, -errno on error.
int WaitReadable(int fd, int wake_fd, int timeout_ms) {
  pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int n = wake_fd >= 0 ? 2 : 1;
  for (;;) {
    int r = poll(p, static_cast<nfds_t>(n), timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return -ETIMEDOUT;
    if (n == 2 && (p[1].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) != 0) return 0;
    if ((p[0].revents & POLLNVAL) != 0) return -EBADF;
    if (p[0].revents != 0) return 1;
  }
}

Napi::Object RecvResultObject(Napi::Env env, const RecvResult& r) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Uint8Array bytes = Napi::Uint8Array::New(env, r.bytes.size());
  if (!r.bytes.empty()) memcpy(bytes.Data(), r.bytes.data(), r.bytes.size());
  o.Set("bytes", bytes);
  Napi::Array fds = Napi::Array::New(env, r.fds.size());
  for (size_t i = 0; i < r.fds.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, r.fds[i]));
  o.Set("fds", fds);
  o.Set("eof", Napi::Boolean::New(env, r.eof));
  o.Set("woken", Napi::Boolean::New(env, r.woken));
  return o;
}

void CheckRecvArgs(const Napi::CallbackInfo& info, int64_t max_bytes, int max_fds) {
  if (max_bytes <= 0 || static_cast<size_t>(max_bytes) > kMaxRecvBytes) throw Napi::RangeError::New(info.Env(), "maxBytes out of range");
  if (max_fds < 0 || max_fds > kMaxRecvFds) throw Napi::RangeError::New(info.Env(), "maxFds out of range");
}

// unixRecv(fd, maxBytes, maxFds, timeoutMs) -> {bytes, fds, eof, woken}: waits
// up to timeoutMs (0: do not wait) then one recvmsg. Throws ETIMEDOUT/EAGAIN
// when nothing arrived.
Napi::Value UnixRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int64_t max_bytes = ArgInt64(info, 1, "maxBytes");
  int max_fds = ArgInt(info, 2, "maxFds");
  int timeout = ArgInt(info, 3, "timeoutMs");
  CheckRecvArgs(info, max_bytes, max_fds);
  if (timeout != 0) {
    int w = WaitReadable(fd, -1, timeout);
    if (w < 0) throw ErrnoError(env, "poll", -w);
  }
  RecvResult r;
  RecvOnce(fd, static_cast<size_t>(max_bytes), max_fds, &r);
  if (r.err != 0) throw ErrnoError(env, "recvmsg", r.err);
  return RecvResultObject(env, r);
}

// The waiting variants: poll on the thread pool, settle a promise.
class RecvWorker : public Napi::AsyncWorker {
 public:
  RecvWorker(Napi::Env env, int fd, int wake_fd, size_t max_bytes, int max_fds)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), wake_fd_(wake_fd),
        max_bytes_(max_bytes), max_fds_(max_fds) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (;;) {
      int w = WaitReadable(fd_, wake_fd_, -1);
      if (w < 0) {
        result_.err = -w;
        return;
      }
      if (w == 0) {
        result_.woken = true;
        return;
      }
      RecvOnce(fd_, max_bytes_, max_fds_, &result_);
      if (result_.err == EAGAIN) {  // spurious wake-up (another reader took it)
        result_.err = 0;
        continue;
      }
      return;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (result_.err != 0) {
      deferred_.Reject(ErrnoError(env, "recvmsg", result_.err).Value());
      return;
    }
    deferred_.Resolve(RecvResultObject(env, result_));
  }

  void OnError(const Napi::Error& e) override {
    CloseAll(result_.fds);
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int wake_fd_;
  size_t max_bytes_;
  int max_fds_;
  RecvResult result_;
};

// unixRecvAsync(fd, maxBytes, maxFds, wakeFd) -> Promise<{bytes, fds, eof, woken}>.
Napi::Value UnixRecvAsync(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int64_t max_bytes = ArgInt64(info, 1, "maxBytes");
  int max_fds = ArgInt(info, 2, "maxFds");
  int wake_fd = ArgInt(info, 3, "wakeFd");
  CheckRecvArgs(info, max_bytes, max_fds);
  auto* w = new RecvWorker(info.Env(), fd, wake_fd, static_cast<size_t>(max_bytes), max_fds);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

class AcceptWorker : public Napi::AsyncWorker {
 public:
  AcceptWorker(Napi::Env env, int fd, int wake_fd)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), wake_fd_(wake_fd) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (;;) {
      int w = WaitReadable(fd_, wake_fd_, -1);
      if (w <= 0) {
        result_ = w == 0 ? -1 : w;
        woken_ = w == 0;
        return;
      }
      result_ = AcceptOne(fd_);
      // Gone before we took it, or a transient per-connection error: wait again.
      if (result_ == -EAGAIN || result_ == -ECONNABORTED || result_ == -EPROTO) continue;
      return;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (woken_) {
      deferred_.Resolve(Napi::Number::New(env, -1));
      return;
    }
    if (result_ < 0) {
      deferred_.Reject(ErrnoError(env, "accept4", -result_).Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, result_));
  }

  void OnError(const Napi::Error& e) override {
    if (result_ >= 0) close(result_);
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int wake_fd_;
  int result_ = -1;
  bool woken_ = false;
};

// unixAcceptAsync(listenFd, wakeFd) -> Promise<fd, or -1 when woken>.
Napi::Value UnixAcceptAsync(const Napi::CallbackInfo& info) {
  auto* w = new AcceptWorker(info.Env(), ArgInt(info, 0, "fd"), ArgInt(info, 1, "wakeFd"));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// unixSend(fd, bytes, fds, timeoutMs) -> bytes sent (all of them): sendmsg
// with the fds (SCM_RIGHTS) on the first byte, MSG_NOSIGNAL, waiting for room
// at most timeoutMs in total (ETIMEDOUT: the peer is not reading).
Napi::Value UnixSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  Bytes data = ArgBytes(info, 1, "bytes");
  std::vector<int> fds;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    if (a.Length() > static_cast<uint32_t>(kMaxRecvFds)) throw Napi::RangeError::New(env, "too many fds");
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "fds must be numbers");
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  int timeout = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 1000;
  if (data.length == 0) throw Napi::RangeError::New(env, "nothing to send");
  size_t sent = 0;
  std::vector<uint8_t> control;
  while (sent < data.length) {
    iovec iov{data.data + sent, data.length - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sent == 0 && !fds.empty()) {
      control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      int r;
      do r = poll(&p, 1, timeout);
      while (r < 0 && errno == EINTR);
      if (r == 0) throw ErrnoError(env, "sendmsg (peer not reading)", ETIMEDOUT);
      if (r < 0) throw ErrnoError(env, "poll", errno);
      continue;
    }
    if (n < 0) throw ErrnoError(env, "sendmsg", errno);
    sent += static_cast<size_t>(n);
  }
  return Napi::Number::New(env, static_cast<double>(sent));
}

// peerCredentials(fd) -> {pid, uid, gid} of the process that connected.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ucred c{};
  socklen_t len = sizeof(c);
  if (getsockopt(ArgInt(info, 0, "fd"), SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) throw ErrnoError(env, "getsockopt(SO_PEERCRED)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, c.pid));
  o.Set("uid", Napi::Number::New(env, c.uid));
  o.Set("gid", Napi::Number::New(env, c.gid));
  return o;
}

// fdInfo(fd) -> {kind, size, seals}: kind 'file' | 'socket' | 'other' (fstat
// type), size in bytes (st_size), seals (F_GET_SEALS, -1 when not sealable).
Napi::Value FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  struct stat st;
  if (fstat(fd, &st) != 0) throw ErrnoError(env, "fstat", errno);
  Napi::Object o = Napi::Object::New(env);
  const char* kind = S_ISREG(st.st_mode) ? "file" : S_ISSOCK(st.st_mode) ? "socket" : "other";
  o.Set("kind", Napi::String::New(env, kind));
  o.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  int seals = fcntl(fd, F_GET_SEALS);
  o.Set("seals", Napi::Number::New(env, seals < 0 ? -1 : seals));
  return o;
}

// fdAddSeals(fd, seals) -> true when the seals are now in place.
Napi::Value FdAddSeals(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int seals = ArgInt(info, 1, "seals");
  return Napi::Boolean::New(info.Env(), fcntl(fd, F_ADD_SEALS, seals) == 0);
}

// fdSetNonBlocking(fd): O_NONBLOCK on the open file (shared with whoever else holds it).
Napi::Value FdSetNonBlocking(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) throw ErrnoError(info.Env(), "fcntl(O_NONBLOCK)", errno);
  return info.Env().Undefined();
}

// mapSharedFd(fd, offset, length) -> ArrayBuffer: MAP_SHARED read/write,
// not pre-faulted (a front end's table may describe far more memory than it
// uses). offset must be page-aligned. Release with unmap().
Napi::Value MapSharedFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int64_t off = ArgInt64(info, 1, "offset");
  int64_t len = ArgInt64(info, 2, "length");
  long page = sysconf(_SC_PAGESIZE);
  if (len <= 0 || off < 0 || off % page != 0 || len > (int64_t{1} << 46)) throw Napi::RangeError::New(env, "mapping offset/length out of range");
  void* p = mmap(nullptr, static_cast<size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(off));
  if (p == MAP_FAILED) throw ErrnoError(env, "mmap", errno);
  return WrapMapping(env, p, static_cast<size_t>(len));
}

// socketPair() -> [fd, fd]: a connected AF_UNIX stream pair, both close-on-exec
// (a child gets its end through spawn's stdio, which dup2s it without the flag).
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw ErrnoError(info.Env(), "socketpair", errno);
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  out.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return out;
}

Napi::Value PageSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE))); }

}  // namespace

void InitUnixSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixListen", Napi::Function::New(env, UnixListen));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept));
  exports.Set("unixAcceptAsync", Napi::Function::New(env, UnixAcceptAsync));
  exports.Set("unixRecv", Napi::Function::New(env, UnixRecv));
  exports.Set("unixRecvAsync", Napi::Function::New(env, UnixRecvAsync));
  exports.Set("unixSend", Napi::Function::New(env, UnixSend));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials));
  exports.Set("fdInfo", Napi::Function::New(env, FdInfo));
  exports.Set("fdAddSeals", Napi::Function::New(env, FdAddSeals));
  exports.Set("fdSetNonBlocking", Napi::Function::New(env, FdSetNonBlocking));
  exports.Set("mapSharedFd", Napi::Function::New(env, MapSharedFd));
  exports.Set("pageSize", Napi::Function::New(env, PageSize));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair));
}

}  // namespace xdpvm
