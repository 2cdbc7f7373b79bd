using System.Buffers;

namespace ModelRouting.Inspection;

/// <summary>
/// A read-only stream over the body as it is forwarded: the bytes the client sent, with the range
/// [<c>cutStart</c>, <c>cutEnd</c>) replaced by <c>insert</c>. No copy of the body is made; the pooled
/// buffer belongs to the <see cref="PooledBody"/>, which outlives every attempt's stream.
/// </summary>
internal sealed class ForwardedBodyStream : Stream
{
    private readonly PooledBody _body;
    private readonly int _length;
    private readonly int _cutStart;
    private readonly int _cutEnd;
    private readonly byte[] _insert;
    private long _position;

    public ForwardedBodyStream(PooledBody body, int cutStart, int cutEnd, byte[] insert)
    {
        _body = body;
        var length = body.Length;
        _length = length;
        _cutStart = cutStart;
        _cutEnd = cutEnd;
        _insert = insert;
        Length = length - (cutEnd - cutStart) + insert.Length;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> destination)
    {
        var source = _body.Buffer ?? throw new ObjectDisposedException(nameof(ForwardedBodyStream));
        var written = 0;
        while (written < destination.Length && _position < Length)
        {
            var segment = CurrentSegment(source);
            var n = Math.Min(segment.Length, destination.Length - written);
            segment[..n].CopyTo(destination[written..]);
            written += n;
            _position += n;
        }

        return written;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        var source = _body.Buffer ?? throw new ObjectDisposedException(nameof(ForwardedBodyStream));
        while (_position < Length)
        {
            var (start, count, fromInsert) = CurrentSegmentBounds();
            await destination.WriteAsync((fromInsert ? _insert : source).AsMemory(start, count), cancellationToken);
            _position += count;
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private ReadOnlySpan<byte> CurrentSegment(byte[] source)
    {
        var (start, count, fromInsert) = CurrentSegmentBounds();
        return (fromInsert ? _insert : source).AsSpan(start, count);
    }

    // The forwarded body is source[0, cutStart) + insert + source[cutEnd, length).
    private (int Start, int Count, bool FromInsert) CurrentSegmentBounds()
    {
        var p = (int)_position;
        if (p < _cutStart)
        {
            return (p, _cutStart - p, false);
        }

        var inInsert = p - _cutStart;
        if (inInsert < _insert.Length)
        {
            return (inInsert, _insert.Length - inInsert, true);
        }

        var inTail = _cutEnd + (inInsert - _insert.Length);
        return (inTail, _length - inTail, false);
    }
}
