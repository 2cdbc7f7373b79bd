using System.Text;
using Microsoft.Net.Http.Headers;

namespace ModelRouting.Inspection;

/// <summary>The outcome of looking for the <c>model</c> field of a multipart/form-data body.</summary>
internal enum MultipartModelResult
{
    /// <summary>No <c>model</c> field.</summary>
    Absent,

    /// <summary>One <c>model</c> field; its value is at the reported range.</summary>
    Found,

    /// <summary>More than one <c>model</c> field: refused, as for JSON (SPEC §9).</summary>
    Duplicate,

    /// <summary>The body is not well-formed multipart with the declared boundary.</summary>
    Malformed,
}

/// <summary>
/// Finds the <c>model</c> form field of a buffered multipart/form-data body (audio transcriptions and the
/// like, reached as pass-through paths), by byte range, so the gateway can route on it and replace exactly
/// that value. Written by hand rather than with <c>MultipartReader</c> because the forwarded body is the
/// client's bytes with one range spliced, which needs offsets that the reader does not expose.
/// </summary>
internal static class MultipartModelField
{
    /// <summary>Returns the boundary of a multipart/form-data content type, or null.</summary>
    public static string? Boundary(string? contentType)
    {
        if (contentType is null || !MediaTypeHeaderValue.TryParse(contentType, out var media)
            || !media.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var boundary = HeaderUtilities.RemoveQuotes(media.Boundary);
        return boundary.Length is > 0 and <= 70 ? boundary.ToString() : null;
    }

    /// <summary>Finds the single <c>model</c> field's value range [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public static MultipartModelResult Find(ReadOnlySpan<byte> body, string boundary, out int start, out int end)
    {
        start = end = 0;
        var delimiter = Encoding.ASCII.GetBytes("--" + boundary);
        var position = body.IndexOf(delimiter);
        if (position < 0)
        {
            return MultipartModelResult.Malformed;
        }

        var found = false;
        while (true)
        {
            position += delimiter.Length;
            if (body[position..].StartsWith("--"u8))
            {
                return found ? MultipartModelResult.Found : MultipartModelResult.Absent;
            }

            // The part's headers, up to the blank line.
            var headersEnd = body[position..].IndexOf("\r\n\r\n"u8);
            if (headersEnd < 0)
            {
                return MultipartModelResult.Malformed;
            }

            var headers = body.Slice(position, headersEnd);
            var contentStart = position + headersEnd + 4;
            var next = IndexOfDelimiter(body, contentStart, delimiter);
            if (next < 0)
            {
                return MultipartModelResult.Malformed;
            }

            if (IsModelField(headers))
            {
                if (found)
                {
                    return MultipartModelResult.Duplicate;
                }

                found = true;
                start = contentStart;
                end = next - 2;
            }

            position = next;
        }
    }

    // The next "\r\n--boundary" at or after `from`; returns the index of the "--".
    private static int IndexOfDelimiter(ReadOnlySpan<byte> body, int from, byte[] delimiter)
    {
        var offset = from;
        while (offset <= body.Length)
        {
            var index = body[offset..].IndexOf(delimiter);
            if (index < 0)
            {
                return -1;
            }

            var at = offset + index;
            if (at >= from + 2 && body[at - 2] == '\r' && body[at - 1] == '\n')
            {
                return at;
            }

            offset = at + 1;
        }

        return -1;
    }

    private static bool IsModelField(ReadOnlySpan<byte> headers)
    {
        foreach (var range in headers.Split("\r\n"u8))
        {
            var line = Encoding.UTF8.GetString(headers[range]);
            var colon = line.IndexOf(':');
            if (colon < 0 || !line.AsSpan(0, colon).Trim().Equals("Content-Disposition", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            return ContentDispositionHeaderValue.TryParse(line[(colon + 1)..].Trim(), out var disposition)
                && disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase)
                && HeaderUtilities.RemoveQuotes(disposition.Name).Equals("model", StringComparison.Ordinal)
                && !disposition.FileName.HasValue && !disposition.FileNameStar.HasValue;
        }

        return false;
    }
}
