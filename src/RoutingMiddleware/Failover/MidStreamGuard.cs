using System.Text;
using Yarp.ReverseProxy.Forwarder;

namespace ModelRouting.Failover;

/// <summary>
/// YARP's HTTP client factory with the mid-stream guard added to every cluster's handler (SPEC §13): when a
/// backend dies in the middle of a streaming (<c>text/event-stream</c>) response, the client receives an
/// OpenAI-shaped error event, then the connection ends without <c>data: [DONE]</c>. A non-streaming response
/// that breaks is aborted by YARP as it is, so a client never sees a truncated 200 that parses.
/// </summary>
internal sealed class GatewayForwarderHttpClientFactory : ForwarderHttpClientFactory
{
    public GatewayForwarderHttpClientFactory(Microsoft.Extensions.Logging.ILogger<ForwarderHttpClientFactory> logger)
        : base(logger)
    {
    }

    protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler) =>
        new MidStreamGuardHandler(base.WrapHandler(context, handler));
}

/// <summary>Wraps the body of a streaming response in a <see cref="MidStreamGuardStream"/>.</summary>
internal sealed class MidStreamGuardHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        if (response.Content.Headers.ContentType?.MediaType is { } type && type.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            var original = response.Content;
            var guarded = new StreamContent(new MidStreamGuardStream(await original.ReadAsStreamAsync(cancellationToken), original));
            foreach (var header in original.Headers)
            {
                guarded.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }

            response.Content = guarded;
        }

        return response;
    }
}

/// <summary>
/// The body of a streaming response: passes the backend's bytes through; when reading them fails (the backend
/// died, the connection reset, the chunked body ended early) it yields one SSE error event with the code
/// <c>upstream_disconnected</c>, starting a new event if the backend stopped mid-event, then fails the next
/// read, so YARP aborts the client's connection after the event and no <c>[DONE]</c> can follow. Both matter:
/// SDKs that read events (Python's) raise on the error event; the .NET SDK ignores it and raises on the broken
/// connection; a clean end of stream would let it return a short answer as if complete.
/// </summary>
internal sealed class MidStreamGuardStream(Stream inner, IDisposable owner) : Stream
{
    private static readonly byte[] s_event = Encoding.UTF8.GetBytes(
        "data: {\"error\":{\"message\":\"The model server stopped in the middle of the response; the response is incomplete.\","
        + "\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_disconnected\"}}\n\n");

    private static readonly TimeSpan s_drainBeforeAbort = TimeSpan.FromMilliseconds(250);

    private byte[]? _pending;
    private int _pendingOffset;
    private Exception? _failure;
    private byte _last1 = (byte)'\n';
    private byte _last2 = (byte)'\n';

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pending is not null)
        {
            return TakePending(buffer.Span);
        }

        if (_failure is not null)
        {
            // YARP aborts the client's connection when this read fails, and an abort drops what the server has not
            // yet handed to the socket: give the error event a moment to leave first. Only broken streams wait.
            await Task.Delay(s_drainBeforeAbort, CancellationToken.None);
            throw new IOException("The model server disconnected in the middle of a streaming response.", _failure);
        }

        try
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            if (read > 0)
            {
                _last2 = read > 1 ? buffer.Span[read - 2] : _last1;
                _last1 = buffer.Span[read - 1];
            }

            return read;
        }
        catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            _failure = e;
            var separator = _last1 == '\n' && _last2 == '\n' ? 0 : _last1 == '\n' ? 1 : 2;
            _pending = new byte[separator + s_event.Length];
            "\n\n"u8[..separator].CopyTo(_pending);
            s_event.CopyTo(_pending, separator);
            return buffer.Length == 0 ? 0 : TakePending(buffer.Span);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            owner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int TakePending(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _pending!.Length - _pendingOffset);
        _pending.AsSpan(_pendingOffset, count).CopyTo(destination);
        _pendingOffset += count;
        if (_pendingOffset == _pending.Length)
        {
            _pending = null;
        }

        return count;
    }
}
