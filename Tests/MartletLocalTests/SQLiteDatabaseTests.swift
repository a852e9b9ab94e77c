import Foundation
import Testing

@testable import MartletLocal

@Suite struct SQLiteDatabaseTests {
    /// One emulator owns a data folder: a second one is refused at start with a plain message, and
    /// the folder is free again once the first has closed it.
    @Test func aSecondOwnerIsRefusedPlainly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("martlet-db-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.sqlite"
        var first: SQLiteDatabase? = try SQLiteDatabase(path: path)
        try first?.write { try $0.execute("CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('kept')") }
        #expect {
            _ = try SQLiteDatabase(path: path, busyTimeout: .milliseconds(100))
        } throws: { error in
            guard let error = error as? SQLiteError else { return false }
            return error.code == 5 && error.message.contains("in use by another process")
        }
        first = nil
        let second = try SQLiteDatabase(path: path, busyTimeout: .milliseconds(100))
        #expect(try second.read { try $0.query("SELECT v FROM t", []) } == [[.text("kept")]])
    }
}
