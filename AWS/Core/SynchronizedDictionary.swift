import Synchronization

/// A small dictionary behind a lock, emptied when it reaches its capacity (caches of derived values).
public final class SynchronizedDictionary<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let storage = Mutex<[Key: Value]>([:])

    public init() {}

    public subscript(key: Key) -> Value? { storage.withLock { $0[key] } }

    public func removeValue(for key: Key) { _ = storage.withLock { $0.removeValue(forKey: key) } }

    /// Stores `value`; a dictionary holding `capacity` entries is emptied first.
    public func insert(_ value: Value, for key: Key, capacity: Int) {
        storage.withLock { storage in
            if storage.count >= capacity { storage.removeAll(keepingCapacity: true) }
            storage[key] = value
        }
    }
}
