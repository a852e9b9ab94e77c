/// HMAC-SHA256 (RFC 2104): the MAC of SigV4's key derivation and signatures.
public enum HMACSHA256 {
    /// The MAC of `message` under `key`.
    public static func authenticationCode(for message: some Collection<UInt8>, key: some Collection<UInt8>) -> [UInt8] {
        Key(key).authenticationCode(for: message)
    }

    /// A key with its padded blocks already hashed: each MAC then hashes only its message (SigV4
    /// signs every request with the same day's key).
    public struct Key: Sendable {
        /// The key as given.
        public let bytes: [UInt8]
        private let inner: SHA256Hasher
        private let outer: SHA256Hasher

        public init(_ key: some Collection<UInt8>) {
            bytes = Array(key)
            var block = bytes.count > SHA256Hasher.blockSize ? SHA256Hasher.hash(bytes) : bytes
            block += [UInt8](repeating: 0, count: SHA256Hasher.blockSize - block.count)
            var inner = SHA256Hasher()
            inner.update(block.map { $0 ^ 0x36 })
            var outer = SHA256Hasher()
            outer.update(block.map { $0 ^ 0x5c })
            self.inner = inner
            self.outer = outer
        }

        /// The MAC of `message`, read in place.
        public func authenticationCode(for message: UnsafeRawBufferPointer) -> [UInt8] {
            var inner = self.inner
            inner.update(message)
            var outer = self.outer
            outer.update(inner.finalize())
            return outer.finalize()
        }

        /// The MAC of `message`.
        public func authenticationCode(for message: some Collection<UInt8>) -> [UInt8] {
            var inner = self.inner
            inner.update(message)
            var outer = self.outer
            outer.update(inner.finalize())
            return outer.finalize()
        }
    }
}
