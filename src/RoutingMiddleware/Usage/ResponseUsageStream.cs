using System.Buffers;
using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace ModelRouting.Usage;

/// <summary>
/// The response body as the gateway writes it to the client, observed on the way (SPEC §14, §15): the time of
/// the first byte and of the first SSE <c>data:</c> event, and the backend's <c>usage</c> (the JSON body's, or a
/// stream's final usage chunk). When the gateway asked for the usage chunk and the client did not, that chunk
/// is not passed on. Every other byte goes through unchanged and at once: a stream is only held back for a line
/// that has not ended, and only when a chunk may be stripped.
/// </summary>
internal sealed class ResponseUsageStream(Stream inner, HttpResponse response, GatewayRequest request) : Stream
{
    // Longest usage object (from its name) or SSE line the tap reads; longer ones pass through unread.
    private const int MaxCapture = 64 * 1024;

    private enum Mode
    {
        Unknown,
        Json,
        EventStream,
        Other,
    }

    private Mode _mode;
    private byte[]? _held;
    private int _heldLength;
    private bool _dropBlankLine;

    // JSON mode: the bytes from a "usage" name on, until its object has been read.
    private byte[]? _capture;
    private int _captureLength;
    private bool _usageRead;
    private readonly byte[] _tail = new byte[UsageReader.Name.Length - 1];
    private int _tailLength;

    public Stream Inner => inner;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return inner.WriteAsync(buffer, cancellationToken);
        }

        if (_mode == Mode.Unknown)
        {
            request.FirstByte = Stopwatch.GetTimestamp();
            _mode = ModeOf(response.ContentType);
        }

        switch (_mode)
        {
            case Mode.Json:
                ObserveJson(buffer.Span);
                return inner.WriteAsync(buffer, cancellationToken);
            case Mode.EventStream when request.StripUsageChunk:
                return WriteEventsAsync(buffer, cancellationToken);
            case Mode.EventStream:
                ObserveEvents(buffer.Span);
                return inner.WriteAsync(buffer, cancellationToken);
            default:
                return inner.WriteAsync(buffer, cancellationToken);
        }
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Returns the pooled buffers; the inner stream is not the tap's to dispose.</summary>
    public void Release()
    {
        if (_held is not null)
        {
            ArrayPool<byte>.Shared.Return(_held);
            _held = null;
        }

        if (_capture is not null)
        {
            ReleaseCapture();
        }
    }

    /// <summary>Starts over for another attempt (the last one's response was discarded before it started).</summary>
    public void Reset()
    {
        Release();
        _mode = Mode.Unknown;
        _heldLength = _captureLength = _tailLength = 0;
        _usageRead = false;
        _dropBlankLine = false;
    }

    private static Mode ModeOf(string? contentType)
    {
        if (contentType is null)
        {
            return Mode.Other;
        }

        return contentType.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase) ? Mode.EventStream
            : contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ? Mode.Json
            : Mode.Other;
    }

    private void ObserveJson(ReadOnlySpan<byte> data)
    {
        if (_usageRead)
        {
            return; // the rest of the body passes unread
        }

        if (_capture is not null)
        {
            Append(ref _capture, ref _captureLength, data);
            TryReadCapture();
            return;
        }

        // A "usage" name may straddle two writes: look in the previous write's last bytes joined to this one's first.
        if (_tailLength > 0)
        {
            Span<byte> joint = stackalloc byte[(_tail.Length * 2)];
            _tail.AsSpan(0, _tailLength).CopyTo(joint);
            var head = data[..Math.Min(data.Length, _tail.Length)];
            head.CopyTo(joint[_tailLength..]);
            var at = joint[..(_tailLength + head.Length)].IndexOf(UsageReader.Name);
            if (at >= 0)
            {
                StartCapture(joint[at.._tailLength], data);
                return;
            }
        }

        var found = data.IndexOf(UsageReader.Name);
        if (found >= 0)
        {
            StartCapture([], data[found..]);
            return;
        }

        _tailLength = Math.Min(_tail.Length, data.Length);
        data[^_tailLength..].CopyTo(_tail);
    }

    private void StartCapture(ReadOnlySpan<byte> first, ReadOnlySpan<byte> rest)
    {
        _tailLength = 0;
        _captureLength = 0;
        Append(ref _capture, ref _captureLength, first);
        Append(ref _capture, ref _captureLength, rest);
        TryReadCapture();
    }

    private void TryReadCapture()
    {
        while (_capture is not null)
        {
            var text = _capture.AsSpan(0, _captureLength);
            switch (UsageReader.TryRead(text, out var prompt, out var completion))
            {
                case UsageReader.Result.Read:
                    request.SetUsage(prompt, completion);
                    _usageRead = true;
                    ReleaseCapture();
                    return;
                case UsageReader.Result.Incomplete when _captureLength < MaxCapture:
                    return;
            }

            // Not a usage object, or too long: look for a later "usage" name in what followed this one, in place.
            var next = text[UsageReader.Name.Length..].IndexOf(UsageReader.Name);
            if (next < 0)
            {
                var tail = Math.Min(_tail.Length, text.Length);
                text[^tail..].CopyTo(_tail);
                _tailLength = tail;
                ReleaseCapture();
                return;
            }

            var from = UsageReader.Name.Length + next;
            text[from..].CopyTo(_capture);
            _captureLength -= from;
        }
    }

    private void ReleaseCapture()
    {
        ArrayPool<byte>.Shared.Return(_capture!);
        _capture = null;
        _captureLength = 0;
    }

    // Observes an event stream that passes through unchanged: complete lines are read; a partial line is kept
    // (a copy, for reading only) until it ends.
    private void ObserveEvents(ReadOnlySpan<byte> data)
    {
        if (_heldLength > 0)
        {
            var newline = data.IndexOf((byte)'\n');
            if (newline < 0)
            {
                HoldPartial(data);
                return;
            }

            Append(ref _held, ref _heldLength, data[..(newline + 1)]);
            ObserveLine(_held.AsSpan(0, _heldLength));
            _heldLength = 0;
            data = data[(newline + 1)..];
        }

        var last = data.LastIndexOf((byte)'\n');
        var complete = data[..(last + 1)];
        while (!complete.IsEmpty)
        {
            var end = complete.IndexOf((byte)'\n');
            ObserveLine(complete[..(end + 1)]);
            complete = complete[(end + 1)..];
        }

        HoldPartial(data[(last + 1)..]);
    }

    private void HoldPartial(ReadOnlySpan<byte> partial)
    {
        if (partial.IsEmpty)
        {
            return;
        }

        if (_heldLength + partial.Length > MaxCapture)
        {
            _heldLength = 0; // a line too long to read: let it pass unread
            return;
        }

        Append(ref _held, ref _heldLength, partial);
    }

    // Writes an event stream whose usage chunk is to be stripped: complete lines go out in runs, the usage
    // chunk's line and the blank line after it are left out, a partial line waits for its end.
    private async ValueTask WriteEventsAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        byte[]? joined = null;
        ReadOnlyMemory<byte> data = buffer;
        if (_heldLength > 0)
        {
            joined = ArrayPool<byte>.Shared.Rent(_heldLength + buffer.Length);
            _held.AsSpan(0, _heldLength).CopyTo(joined);
            buffer.Span.CopyTo(joined.AsSpan(_heldLength));
            data = joined.AsMemory(0, _heldLength + buffer.Length);
            _heldLength = 0;
        }

        try
        {
            var last = data.Span.LastIndexOf((byte)'\n');
            if (last < 0 && data.Length > MaxCapture)
            {
                await inner.WriteAsync(data, cancellationToken); // a line too long to be a usage chunk
                return;
            }

            var runStart = 0;
            var position = 0;
            while (position <= last)
            {
                var end = position + data.Span[position..].IndexOf((byte)'\n') + 1;
                if (Drop(data.Span[position..end]))
                {
                    if (position > runStart)
                    {
                        await inner.WriteAsync(data[runStart..position], cancellationToken);
                    }

                    runStart = end;
                }

                position = end;
            }

            if (position > runStart)
            {
                await inner.WriteAsync(data[runStart..position], cancellationToken);
            }

            if (position < data.Length)
            {
                Append(ref _held, ref _heldLength, data.Span[position..]);
            }
        }
        finally
        {
            if (joined is not null)
            {
                ArrayPool<byte>.Shared.Return(joined);
            }
        }
    }

    private bool Drop(ReadOnlySpan<byte> line)
    {
        if (_dropBlankLine)
        {
            _dropBlankLine = false;
            if (line.TrimEnd("\r\n"u8).IsEmpty)
            {
                return true;
            }
        }

        if (ObserveLine(line))
        {
            _dropBlankLine = true;
            return true;
        }

        return false;
    }

    // Reads one complete SSE line; returns whether it is the final usage chunk (usage, no choices).
    private bool ObserveLine(ReadOnlySpan<byte> line)
    {
        if (!line.StartsWith("data:"u8))
        {
            return false;
        }

        var payload = line[5..].Trim(" \r\n"u8);
        if (payload.IsEmpty || payload.SequenceEqual("[DONE]"u8))
        {
            return false;
        }

        if (request.FirstToken == 0)
        {
            request.FirstToken = Stopwatch.GetTimestamp();
        }

        var at = payload.IndexOf(UsageReader.Name);
        while (at >= 0)
        {
            if (UsageReader.TryRead(payload[at..], out var prompt, out var completion) == UsageReader.Result.Read)
            {
                request.SetUsage(prompt, completion);
                if (UsageReader.HasEmptyChoices(payload))
                {
                    return true;
                }

                break;
            }

            var next = payload[(at + 1)..].IndexOf(UsageReader.Name);
            at = next < 0 ? -1 : at + 1 + next;
        }

        request.StreamedEvents++;
        return false;
    }

    private static void Append(ref byte[]? buffer, ref int length, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (buffer is null || buffer.Length < length + data.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(Math.Max(256, (length + data.Length) * 2));
            if (buffer is not null)
            {
                buffer.AsSpan(0, length).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(buffer);
            }

            buffer = grown;
        }

        data.CopyTo(buffer.AsSpan(length));
        length += data.Length;
    }
}
