import NIOCore
import NIOHTTP1

/// The last handler of a client connection: delivers each response's head through a promise and its
/// body as an async sequence, reading from the socket only as fast as that sequence is consumed.
///
/// One exchange at a time: ``Begin`` (an outbound user event) opens it before the request is written;
/// it ends with the response's end, after which the connection goes back to its pool if both sides
/// want to keep it alive. The request's deadline bounds the wait for the head; after it, a body that
/// brings no byte for as long as the request's timeout (while its reader keeps up) fails as stalled.
final class HTTP1ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    typealias Body = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDelegate
    >

    /// Opens an exchange.
    struct Begin {
        var exchange: Int
        var response: EventLoopPromise<ResponseStart>
        var deadline: NIODeadline
        var onIdle: @Sendable () -> Void
    }

    /// The task that sent exchange `exchange` was cancelled: if its response has not begun, give up on it.
    struct Cancel {
        var exchange: Int
    }

    /// What the caller gets once the head has arrived.
    struct ResponseStart: Sendable {
        var head: HTTPResponseHead
        var body: Body
    }

    private enum State {
        case idle
        case awaitingHead(Begin)
        case streaming(Body.Source, onIdle: @Sendable () -> Void)
        case closed
    }

    private var state = State.idle
    private var exchange = 0
    private var requestComplete = false
    /// The response ended before the request did: the pool gets the connection once the request's end is written.
    private var idleOnceRequestEnds: (@Sendable () -> Void)?
    private var keepAlive = true
    /// The consumer has enough buffered: hold the next read until it asks for more.
    private var paused = false
    private var readHeld = false
    /// Deadline of the head, then the body's stall check.
    private var timer: Scheduled<Void>?
    private var timeout = TimeAmount.zero
    private var lastActivity = NIODeadline.now()
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(HTTP1TransportError.closedBeforeResponse)
        self.context = nil
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let cancel = event as? Cancel {
            promise?.succeed()
            guard cancel.exchange == exchange, case .awaitingHead = state else { return }
            fail(CancellationError())
            context.close(promise: nil)
            return
        }
        guard let begin = event as? Begin else { return context.triggerUserOutboundEvent(event, promise: promise) }
        promise?.succeed()
        guard case .idle = state else {
            begin.response.fail(HTTP1TransportError.closedBeforeResponse)
            return
        }
        exchange = begin.exchange
        requestComplete = false
        keepAlive = true
        paused = false
        readHeld = false
        timeout = max(begin.deadline - .now(), .milliseconds(1))
        state = .awaitingHead(begin)
        arm(at: begin.deadline)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        requestComplete = true
        context.write(data, promise: promise)
        // The answer came before the request's end was written (a server answers once it has the
        // last byte; the end of a streamed body follows it): the connection is free now.
        if let idle = idleOnceRequestEnds {
            idleOnceRequestEnds = nil
            idle()
        }
    }

    func read(context: ChannelHandlerContext) {
        if paused { readHeld = true } else { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        switch unwrapInboundIn(data) {
        case .head(let head):
            // 1xx answers (100 Continue) come before the real one.
            guard head.status.code >= 200, case .awaitingHead(let begin) = state else { return }
            keepAlive = head.isKeepAlive
            let delegate = BodyDelegate(handler: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange)
            let body = Body.makeSequence(
                backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8), finishOnDeinit: false, delegate: delegate
            )
            state = .streaming(body.source, onIdle: begin.onIdle)
            arm(at: lastActivity + timeout)
            begin.response.succeed(ResponseStart(head: head, body: body.sequence))
        case .body(let chunk):
            guard case .streaming(let source, _) = state else { return }
            switch source.yield(chunk) {
            case .produceMore: paused = false
            case .stopProducing: paused = true
            case .dropped: context.close(promise: nil)
            }
        case .end:
            guard case .streaming(let source, let onIdle) = state else { return }
            state = .idle
            paused = false
            timer?.cancel()
            timer = nil
            // Back in the pool before the consumer hears of the end, so its next request can reuse it;
            // or, when the request's end is still to be written, as soon as it is.
            if !keepAlive {
                context.close(promise: nil)
            } else if requestComplete {
                onIdle()
            } else {
                idleOnceRequestEnds = onIdle
            }
            source.finish()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTP1TransportError.closedBeforeResponse)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        timer?.cancel()
        timer = nil
        idleOnceRequestEnds = nil
        switch state {
        case .awaitingHead(let begin):
            begin.response.fail(error)
        case .streaming(let source, _):
            source.finish(error)
        case .idle, .closed:
            break
        }
        state = .closed
    }

    private func arm(at deadline: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { handler.value.timerFired() }
    }

    private func timerFired() {
        switch state {
        case .awaitingHead:
            fail(HTTP1TransportError.timedOut)
            context?.close(promise: nil)
        case .streaming:
            // A reader that is behind holds the socket back: that is not the server stalling.
            if paused || NIODeadline.now() < lastActivity + timeout {
                arm(at: max(lastActivity, .now()) + timeout)
            } else {
                fail(HTTP1TransportError.stalled)
                context?.close(promise: nil)
            }
        case .idle, .closed:
            break
        }
    }

    /// The body's consumer wants more.
    fileprivate func resume(exchange: Int) {
        guard exchange == self.exchange, paused else { return }
        paused = false
        lastActivity = .now()
        if readHeld, let context {
            readHeld = false
            context.read()
        }
    }

    /// The body's consumer stopped before the end: the rest of the body is unread, so the connection
    /// cannot carry another request.
    fileprivate func abandon(exchange: Int) {
        guard exchange == self.exchange, case .streaming = state else { return }
        timer?.cancel()
        timer = nil
        state = .closed
        context?.close(promise: nil)
    }
}

/// Connects a response body's back-pressure to its connection's handler.
struct BodyDelegate: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<HTTP1ClientHandler>
    let exchange: Int

    func produceMore() {
        handler.eventLoop.execute { [handler, exchange] in handler.value.resume(exchange: exchange) }
    }

    func didTerminate() {
        handler.eventLoop.execute { [handler, exchange] in handler.value.abandon(exchange: exchange) }
    }
}
