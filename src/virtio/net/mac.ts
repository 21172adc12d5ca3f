// MAC addresses as users write them (52:54:00:12:34:56). One parser for
// every command line that takes one; the caller makes the error, naming its option.

/** Six hex pairs separated by colons, unicast (a device cannot own a multicast address). */
export function parseMac(text: string, error: (why: string) => Error): Uint8Array {
  if (!/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i.test(text)) throw error(`'${text}' is not a MAC address like 52:54:00:12:34:56`);
  const mac = Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
  if ((mac[0]! & 1) !== 0) throw error(`'${text}' is a multicast address`);
  return mac;
}
