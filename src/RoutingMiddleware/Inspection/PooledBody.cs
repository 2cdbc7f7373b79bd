namespace ModelRouting.Inspection;

/// <summary>
/// A request body read into a pooled buffer, owned for the whole request: every attempt forwards it through
/// its own <see cref="ForwardedBodyStream"/> (no copy per attempt), and the buffer goes back to the pool
/// exactly once, when the request ends.
/// </summary>
internal sealed class PooledBody(byte[] buffer, int length) : IDisposable
{
    private byte[]? _buffer = buffer;

    /// <summary>Gets the buffer, or null once returned.</summary>
    public byte[]? Buffer => Volatile.Read(ref _buffer);

    /// <summary>Gets the body's length in bytes.</summary>
    public int Length { get; } = length;

    /// <summary>Gets the body's bytes.</summary>
    public ReadOnlySpan<byte> Span => (Buffer ?? throw new ObjectDisposedException(nameof(PooledBody))).AsSpan(0, Length);

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            RequestBodyReader.BodyBufferPool.Return(buffer);
        }
    }
}
