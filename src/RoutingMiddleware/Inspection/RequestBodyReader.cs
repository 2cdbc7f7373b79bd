using System.Buffers;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace ModelRouting.Inspection;

/// <summary>The outcome of reading a request body: a pooled buffer, or why it could not be read.</summary>
internal readonly record struct BodyReadResult(byte[]? Buffer, int Length, BodyReadFailure Failure, string? Detail = null);

internal enum BodyReadFailure
{
    None,
    TooLarge,
    UnsupportedEncoding,
    Malformed,
}

/// <summary>
/// Reads a request body once into a pooled buffer, bounded by a limit: past the limit it stops reading
/// and reports <see cref="BodyReadFailure.TooLarge"/> without buffering the rest. Content-Length is never
/// trusted for sizing beyond a small first rental; gzip, deflate and br bodies are decoded (the limit
/// applies to the decoded size).
/// </summary>
internal static class RequestBodyReader
{
    /// <summary>
    /// The pool of body buffers. ArrayPool.Shared keeps only a few large arrays per core, so under concurrent
    /// 256 KB+ bodies most rentals missed and became large-object-heap garbage (gen 2 collections on the hot
    /// path). This pool keeps up to 32 buffers per size up to 4 MiB; larger bodies are rare and rented fresh.
    /// </summary>
    internal static readonly ArrayPool<byte> BodyBufferPool = ArrayPool<byte>.Create(4 * 1024 * 1024, 32);

    private const int FirstRental = 16 * 1024;
    private const int MaxFirstRental = 1024 * 1024;

    public static async ValueTask<BodyReadResult> ReadAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        if (request.ContentLength > limit)
        {
            return new(null, 0, BodyReadFailure.TooLarge);
        }

        var body = request.Body;
        var encoding = request.Headers.ContentEncoding;
        var decoded = false;
        if (!Microsoft.Extensions.Primitives.StringValues.IsNullOrEmpty(encoding))
        {
            var name = encoding.ToString().Trim();
            Stream? decoder = name.ToUpperInvariant() switch
            {
                "GZIP" or "X-GZIP" => new GZipStream(body, CompressionMode.Decompress, leaveOpen: true),
                "DEFLATE" => new ZLibStream(body, CompressionMode.Decompress, leaveOpen: true),
                "BR" => new BrotliStream(body, CompressionMode.Decompress, leaveOpen: true),
                "IDENTITY" => null,
                _ => Stream.Null,
            };
            if (ReferenceEquals(decoder, Stream.Null))
            {
                return new(null, 0, BodyReadFailure.UnsupportedEncoding, $"Content-Encoding '{name}' is not supported; send identity, gzip, deflate or br.");
            }

            if (decoder is not null)
            {
                body = decoder;
                decoded = true;
            }
        }
        else
        {
            // The loop below enforces our limit exactly, so lift Kestrel's own (30 MB by default, and its
            // chunked decoder counts more than the body's bytes against it) where it still can.
            var sizeFeature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
            if (sizeFeature is { IsReadOnly: false })
            {
                sizeFeature.MaxRequestBodySize = null;
            }
        }

        var initial = request.ContentLength is { } length && !decoded
            ? (int)Math.Clamp(length + 1, 1, MaxFirstRental)
            : FirstRental;
        var buffer = BodyBufferPool.Rent(initial);
        var total = 0;
        try
        {
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (total > limit)
                    {
                        BodyBufferPool.Return(buffer);
                        return new(null, 0, BodyReadFailure.TooLarge);
                    }

                    var bigger = BodyBufferPool.Rent((int)Math.Min((long)buffer.Length * 2, Math.Min(limit + 1, Array.MaxLength)));
                    buffer.AsSpan(0, total).CopyTo(bigger);
                    BodyBufferPool.Return(buffer);
                    buffer = bigger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(total), context.RequestAborted);
                if (read == 0)
                {
                    break;
                }

                total += read;
                if (total > limit)
                {
                    BodyBufferPool.Return(buffer);
                    return new(null, 0, BodyReadFailure.TooLarge);
                }
            }
        }
        catch (BadHttpRequestException e)
        {
            BodyBufferPool.Return(buffer);
            return e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? new(null, 0, BodyReadFailure.TooLarge)
                : new(null, 0, BodyReadFailure.Malformed, e.Message);
        }
        catch (Exception e) when (decoded && e is InvalidDataException or InvalidOperationException)
        {
            // GZip and Deflate report corrupt data with InvalidDataException, Brotli with InvalidOperationException.
            BodyBufferPool.Return(buffer);
            return new(null, 0, BodyReadFailure.Malformed, $"The {encoding} body could not be decoded: {e.Message}");
        }
        catch
        {
            BodyBufferPool.Return(buffer);
            throw;
        }
        finally
        {
            if (decoded)
            {
                await body.DisposeAsync();
            }
        }

        if (decoded)
        {
            request.Headers.Remove(HeaderNames.ContentEncoding);
        }

        return new(buffer, total, BodyReadFailure.None);
    }
}
