// Interfaces: name to index, and what XDP program an interface has, read over
// rtnetlink (RTM_GETLINK, IFLA_XDP). Needs no privilege, so the unprivileged
// side can check that the helper's program is really there.
#include "xsk.h"
#include "../common/napi_util.h"

#include <net/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

namespace xdpvm {
namespace {

struct XdpState {
  uint32_t attached = 0, progId = 0, drvProgId = 0, skbProgId = 0, hwProgId = 0;
};

void ParseXdp(rtattr* nest, XdpState* st) {
  int len = RTA_PAYLOAD(nest);
  for (rtattr* a = static_cast<rtattr*>(RTA_DATA(nest)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
      case IFLA_XDP_ATTACHED: st->attached = *static_cast<uint8_t*>(RTA_DATA(a)); break;
      case IFLA_XDP_PROG_ID: st->progId = *static_cast<uint32_t*>(RTA_DATA(a)); break;
      case IFLA_XDP_DRV_PROG_ID: st->drvProgId = *static_cast<uint32_t*>(RTA_DATA(a)); break;
      case IFLA_XDP_SKB_PROG_ID: st->skbProgId = *static_cast<uint32_t*>(RTA_DATA(a)); break;
      case IFLA_XDP_HW_PROG_ID: st->hwProgId = *static_cast<uint32_t*>(RTA_DATA(a)); break;
      default: break;
    }
  }
}

// xdpQuery(ifindex) -> {attached, progId, drvProgId, skbProgId, hwProgId, mtu}
// attached: 0 none, 1 driver, 2 generic (skb), 3 offload, 4 several; mtu: IFLA_MTU
// (read here rather than from /sys, which shows the netns sysfs was mounted in).
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = ArgInt(info, 0, "ifindex");
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) throw ErrnoError(env, "socket(AF_NETLINK)", errno);
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, "send(RTM_GETLINK)", err);
  }
  alignas(nlmsghdr) char buf[32768];
  XdpState st;
  uint32_t mtu = 0;
  bool done = false;
  while (!done) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      int err = errno;
      close(fd);
      throw ErrnoError(env, "recv(RTM_GETLINK)", err);
    }
    int len = static_cast<int>(n);
    for (nlmsghdr* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type == NLMSG_ERROR) {
        int err = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
        if (err == 0) { done = true; break; }
        close(fd);
        throw ErrnoError(env, "RTM_GETLINK", err);
      }
      if (nh->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (nh->nlmsg_type != RTM_NEWLINK) continue;
      ifinfomsg* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
      int alen = static_cast<int>(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
      for (rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_XDP) ParseXdp(a, &st);
        if (a->rta_type == IFLA_MTU) mtu = *static_cast<uint32_t*>(RTA_DATA(a));
      }
      done = true;
    }
  }
  close(fd);
  Napi::Object r = Napi::Object::New(env);
  r.Set("attached", st.attached);
  r.Set("progId", st.progId);
  r.Set("drvProgId", st.drvProgId);
  r.Set("skbProgId", st.skbProgId);
  r.Set("hwProgId", st.hwProgId);
  r.Set("mtu", mtu);
  return r;
}

// ifNameToIndex(name) -> index, 0 if there is no such interface in this thread's netns.
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "ifname");
  if (name.empty() || name.size() >= IF_NAMESIZE) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
}

}  // namespace xdpvm
