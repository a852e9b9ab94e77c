import CSQLite
import Synchronization

/// A value stored in or read from SQLite.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null

    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var text: String? {
        if case .text(let value) = self { return value }
        return nil
    }
}

/// An SQLite failure, with SQLite's message.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection used from many tasks, one statement at a time: durable local state in a
/// file (WAL journal, so a killed process loses no committed transaction) or in memory for tests.
///
/// ```swift
/// let database = try SQLiteDatabase(path: ".martlet/state.sqlite")
/// try database.write { db in try db.run("INSERT INTO t(v) VALUES (?)", [.text("x")]) }
/// ```
public final class SQLiteDatabase: @unchecked Sendable {
    // The connection is only touched while `lock` is held.
    private let lock = Mutex(())
    private let connection: Connection

    /// Opens (creating when missing) the database at `path`; `nil` keeps it in memory. A file
    /// another process holds is refused once `busyTimeout` has passed.
    public init(path: String?, busyTimeout: Duration = .seconds(5)) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path ?? ":memory:", &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(handle)
            throw SQLiteError(code: status, message: "\(path ?? ":memory:"): \(message)")
        }
        connection = Connection(handle)
        sqlite3_busy_timeout(handle, Int32(busyTimeout / .milliseconds(1)))
        if let path {
            do {
                try Self.configureFile(connection)
            } catch let error as SQLiteError where error.code == SQLITE_BUSY {
                throw SQLiteError(code: error.code, message: "\(path) is in use by another process (another martlet on the same data folder?)")
            }
        }
        try connection.run("PRAGMA foreign_keys=ON", [])
    }

    /// A file database's settings; the lock is taken here, so a second emulator on the folder is refused at start.
    private static func configureFile(_ connection: Connection) throws {
        // WAL with synchronous=NORMAL: a committed transaction survives the process being killed.
        _ = try connection.query("PRAGMA journal_mode=WAL", [])
        try connection.run("PRAGMA synchronous=NORMAL", [])
        // One process owns the data folder: no file lock taken and dropped per transaction.
        _ = try connection.query("PRAGMA locking_mode=EXCLUSIVE", [])
        // Pages read through a memory map rather than a read call each.
        _ = try connection.query("PRAGMA mmap_size=268435456", [])
        // Checkpoints run from `checkpoint()` (the endpoint calls it every second), not inside a
        // request's commit; this bound only applies when nobody calls it.
        _ = try connection.query("PRAGMA wal_autocheckpoint=16384", [])
        try connection.run("BEGIN IMMEDIATE", [])
        try connection.run("COMMIT", [])
    }

    deinit { sqlite3_close_v2(connection.handle) }

    /// Runs `body` in one transaction: all its writes commit together or not at all.
    public func write<Result>(_ body: (Connection) throws -> Result) throws -> Result {
        try lock.withLock { _ in
            try connection.run("BEGIN IMMEDIATE", [])
            do {
                let result = try body(connection)
                try connection.run("COMMIT", [])
                return result
            } catch {
                _ = try? connection.run("ROLLBACK", [])
                throw error
            }
        }
    }

    /// Copies committed pages from the write-ahead log into the database file, so the log stays
    /// short; a no-op for a database in memory.
    public func checkpoint() throws {
        try lock.withLock { _ in _ = try connection.query("PRAGMA wal_checkpoint(PASSIVE)", []) }
    }

    /// Runs `body` with the connection, outside an explicit transaction (reads, schema).
    public func read<Result>(_ body: (Connection) throws -> Result) throws -> Result {
        try lock.withLock { _ in try body(connection) }
    }

    /// The connection, handed to `read` and `write` bodies; statements are prepared once and reused.
    public final class Connection {
        fileprivate let handle: OpaquePointer
        private var statements: [String: OpaquePointer] = [:]

        fileprivate init(_ handle: OpaquePointer) { self.handle = handle }

        deinit { for statement in statements.values { sqlite3_finalize(statement) } }

        /// Runs a statement that returns no rows; returns the number of rows changed.
        @discardableResult
        public func run(_ sql: String, _ parameters: [SQLiteValue]) throws -> Int {
            let statement = try prepared(sql, parameters)
            defer { sqlite3_reset(statement) }
            let status = sqlite3_step(statement)
            guard status == SQLITE_DONE || status == SQLITE_ROW else { throw error(status) }
            return Int(sqlite3_changes(handle))
        }

        /// Runs a query and returns its rows.
        public func query(_ sql: String, _ parameters: [SQLiteValue]) throws -> [[SQLiteValue]] {
            let statement = try prepared(sql, parameters)
            defer { sqlite3_reset(statement) }
            var rows: [[SQLiteValue]] = []
            while true {
                let status = sqlite3_step(statement)
                if status == SQLITE_DONE { return rows }
                guard status == SQLITE_ROW else { throw error(status) }
                let count = sqlite3_column_count(statement)
                rows.append((0..<count).map { column(statement, $0) })
            }
        }

        /// Runs several statements of schema at once.
        public func execute(_ sql: String) throws {
            var message: UnsafeMutablePointer<CChar>?
            let status = sqlite3_exec(handle, sql, nil, nil, &message)
            if status != SQLITE_OK {
                let text = message.map { String(cString: $0) } ?? "unknown"
                sqlite3_free(message)
                throw SQLiteError(code: status, message: text)
            }
        }

        private func prepared(_ sql: String, _ parameters: [SQLiteValue]) throws -> OpaquePointer {
            let statement: OpaquePointer
            if let cached = statements[sql] {
                statement = cached
                sqlite3_clear_bindings(statement)
            } else {
                var created: OpaquePointer?
                let status = sqlite3_prepare_v2(handle, sql, -1, &created, nil)
                guard status == SQLITE_OK, let created else { throw error(status) }
                statements[sql] = created
                statement = created
            }
            for (offset, parameter) in parameters.enumerated() {
                let index = Int32(offset + 1)
                let status: Int32
                switch parameter {
                case .integer(let value): status = sqlite3_bind_int64(statement, index, value)
                case .real(let value): status = sqlite3_bind_double(statement, index, value)
                case .text(let value): status = sqlite3_bind_text(statement, index, value, -1, Self.transient)
                case .blob(let value) where value.isEmpty:
                    // An empty blob, not NULL (which a null pointer would bind).
                    status = sqlite3_bind_zeroblob(statement, index, 0)
                case .blob(let value):
                    status = value.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), Self.transient) }
                case .null: status = sqlite3_bind_null(statement, index)
                }
                guard status == SQLITE_OK else { throw error(status) }
            }
            return statement
        }

        private func column(_ statement: OpaquePointer, _ index: Int32) -> SQLiteValue {
            switch sqlite3_column_type(statement, index) {
            case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
            case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
            case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, index)))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(statement, index))
                guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return .blob([]) }
                return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
            default: return .null
            }
        }

        private func error(_ status: Int32) -> SQLiteError {
            SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)))
        }

        private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    }
}
