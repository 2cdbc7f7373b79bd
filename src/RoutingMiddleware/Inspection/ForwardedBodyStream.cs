using System.Buffers;

namespace ModelRouting.Inspection;

/// <summary>
/// A read-only stream over the body as it is forwarded: the bytes the client sent, with the range
/// [<c>cutStart</c>, <c>cutEnd</c>) replaced by <c>insert</c> (the model), and optionally a second, later
/// range replaced (<c>stream_options</c>). No copy of the body is made; the pooled buffer belongs to the
/// <see cref="PooledBody"/>, which outlives every attempt's stream.
/// </summary>
internal sealed class ForwardedBodyStream : Stream
{
    private readonly PooledBody _body;
    private readonly int _length;
    private readonly int _cutStart;
    private readonly int _cutEnd;
    private readonly byte[] _insert;
    private readonly int _cut2Start;
    private readonly int _cut2End;
    private readonly byte[] _insert2;
    private long _position;

    public ForwardedBodyStream(PooledBody body, int cutStart, int cutEnd, byte[] insert)
        : this(body, new BodyEdit(cutStart, cutEnd, insert), BodyEdit.None)
    {
    }

    /// <summary>Creates the stream with two edits that do not overlap, in either order.</summary>
    public ForwardedBodyStream(PooledBody body, BodyEdit first, BodyEdit second)
    {
        _body = body;
        var length = body.Length;
        _length = length;
        if (second.Insert is null)
        {
            second = new BodyEdit(length, length, []);
        }
        else if (second.Start < first.Start)
        {
            (first, second) = (second, first);
        }

        _cutStart = first.Start;
        _cutEnd = first.End;
        _insert = first.Insert ?? [];
        _cut2Start = second.Start;
        _cut2End = second.End;
        _insert2 = second.Insert!;
        Length = length - (_cutEnd - _cutStart) + _insert.Length - (_cut2End - _cut2Start) + _insert2.Length;
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
            var (start, count, from) = CurrentSegmentBounds();
            await destination.WriteAsync((from ?? source).AsMemory(start, count), cancellationToken);
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
        var (start, count, from) = CurrentSegmentBounds();
        return (from ?? source).AsSpan(start, count);
    }

    // The forwarded body is source[0, cutStart) + insert + source[cutEnd, cut2Start) + insert2 + source[cut2End, length).
    // Returns the current segment: its start and length in its array, and that array when it is an insert.
    private (int Start, int Count, byte[]? From) CurrentSegmentBounds()
    {
        var p = (int)_position;
        if (p < _cutStart)
        {
            return (p, _cutStart - p, null);
        }

        var inInsert = p - _cutStart;
        if (inInsert < _insert.Length)
        {
            return (inInsert, _insert.Length - inInsert, _insert);
        }

        var inMiddle = _cutEnd + (inInsert - _insert.Length);
        if (inMiddle < _cut2Start)
        {
            return (inMiddle, _cut2Start - inMiddle, null);
        }

        var inInsert2 = inMiddle - _cut2Start;
        if (inInsert2 < _insert2.Length)
        {
            return (inInsert2, _insert2.Length - inInsert2, _insert2);
        }

        var inTail = _cut2End + (inInsert2 - _insert2.Length);
        return (inTail, _length - inTail, null);
    }
}

/// <summary>One replacement in a forwarded body: the bytes [<c>Start</c>, <c>End</c>) become <c>Insert</c>.</summary>
internal readonly record struct BodyEdit(int Start, int End, byte[]? Insert)
{
    /// <summary>Gets the absence of an edit.</summary>
    public static BodyEdit None => default;
}
