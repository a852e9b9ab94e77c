import NIOCore

/// AWS's event stream encoding (`application/vnd.amazon.eventstream`), as `InvokeWithResponseStream`
/// answers: each message is a prelude (total and headers length, the prelude's CRC32), string
/// headers, the payload, and the message's CRC32.
enum EventStream {
    static let contentType = "application/vnd.amazon.eventstream"

    /// One `event` message of type `eventType`.
    static func event(_ eventType: String, contentType: String? = nil, payload: ByteBuffer) -> ByteBuffer {
        var headers = ByteBuffer()
        writeHeader(":event-type", eventType, to: &headers)
        if let contentType { writeHeader(":content-type", contentType, to: &headers) }
        writeHeader(":message-type", "event", to: &headers)
        let total = 12 + headers.readableBytes + payload.readableBytes + 4
        var message = ByteBuffer()
        message.reserveCapacity(total)
        message.writeInteger(UInt32(total))
        message.writeInteger(UInt32(headers.readableBytes))
        message.writeInteger(crc32(message.readableBytesView))
        var headerBytes = headers
        var payloadBytes = payload
        message.writeBuffer(&headerBytes)
        message.writeBuffer(&payloadBytes)
        message.writeInteger(crc32(message.readableBytesView))
        return message
    }

    /// A header with a string value (type 7).
    static func writeHeader(_ name: String, _ value: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(name.utf8.count))
        buffer.writeString(name)
        buffer.writeInteger(UInt8(7))
        buffer.writeInteger(UInt16(value.utf8.count))
        buffer.writeString(value)
    }

    static func crc32(_ bytes: ByteBufferView) -> UInt32 {
        bytes.withUnsafeBytes { S3CRC.update32(0, $0, table: S3CRC.crc32Table) }
    }
}
