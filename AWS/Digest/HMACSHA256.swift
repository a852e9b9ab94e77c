/// HMAC-SHA256 (RFC 2104): the MAC of SigV4's key derivation and signatures.
public enum HMACSHA256 {
    /// The MAC of `message` under `key`.
    public static func authenticationCode(for message: some Collection<UInt8>, key: some Collection<UInt8>) -> [UInt8] {
        var key = Array(key)
        if key.count > SHA256Hasher.blockSize { key = SHA256Hasher.hash(key) }
        key += [UInt8](repeating: 0, count: SHA256Hasher.blockSize - key.count)
        var inner = SHA256Hasher()
        inner.update(key.map { $0 ^ 0x36 })
        inner.update(message)
        var outer = SHA256Hasher()
        outer.update(key.map { $0 ^ 0x5c })
        outer.update(inner.finalize())
        return outer.finalize()
    }
}
