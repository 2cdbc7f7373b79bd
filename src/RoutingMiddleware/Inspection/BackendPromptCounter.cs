using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Backends;
using ModelRouting.Configuration;
using ModelRouting.Logging;
using ModelRouting.Registry;
using Yarp.ReverseProxy;

namespace ModelRouting.Inspection;

/// <summary>
/// Backend mode's exact counter (SPEC §18): asks the endpoint's serving engine to count the prompt with its own
/// tokenizer and chat template, <c>POST /tokenize</c> in vLLM's shape, and caches the answer by content.
/// </summary>
/// <remarks>
/// <para>
/// A chat request is sent as <c>{"model": upstream, "messages": …}</c> (plus the members that change what the chat
/// template renders: <c>tools</c>, <c>add_generation_prompt</c>, <c>continue_final_message</c>,
/// <c>add_special_tokens</c>, <c>chat_template</c>, <c>chat_template_kwargs</c>), each value the client's bytes as
/// received; a completion with a string <c>prompt</c> as <c>{"model": upstream, "prompt": …}</c>. Other shapes
/// (Responses, embeddings, prompt arrays, messages with image, audio or file parts, which the engine would have to
/// fetch) have no such request and are counted locally, as a failed count is.
/// </para>
/// <para>
/// The call goes through <see cref="BackendClient"/>: the cluster's own HTTP client and its backend key, to one of the
/// cluster's available destinations, with <c>TokenEstimation:BackendTimeout</c> as the deadline. Answers are cached
/// in a <see cref="MemoryCache"/> of at most <c>TokenEstimation:CacheSize</c> entries, keyed by the SHA-256 of the
/// cluster id and the exact request bytes (which hold the upstream model): 32 bytes of key and a count per entry, so
/// memory is bounded. The whole 256-bit digest is the key: unlike the single pass's string cache (a seeded 64-bit
/// hash, verified by comparing bytes), finding two requests with one key means finding a SHA-256 collision, and
/// storing every counted body to compare would cost up to <c>MaxRequestBodyBytes</c> per entry. A cluster whose
/// count failed is not asked again for <see cref="FailureBackoff"/> (its cached counts still decide), so a backend
/// without <c>/tokenize</c> costs one failed call per period, not one per request near a limit.
/// </para>
/// <para>Thread-safe.</para>
/// </remarks>
internal sealed partial class BackendPromptCounter : IDisposable
{
    /// <summary>How long a cluster whose count failed is not asked again: 10 seconds.</summary>
    public static readonly TimeSpan FailureBackoff = TimeSpan.FromSeconds(10);

    private readonly IProxyStateLookup _proxy;
    private readonly BackendClient _client;
    private readonly TimeProvider _time;
    private readonly ILogger<BackendPromptCounter> _logger;
    private readonly MemoryCache _cache;
    private readonly ConcurrentDictionary<string, long> _failedUntil = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<CountKey, Task<long?>> _inFlight = new();

    public BackendPromptCounter(
        IProxyStateLookup proxy, BackendClient client, IOptionsMonitor<ModelRoutingOptions> options, TimeProvider time, ILogger<BackendPromptCounter> logger)
    {
        _proxy = proxy;
        _client = client;
        _time = time;
        _logger = logger;
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = Math.Max(1, options.CurrentValue.TokenEstimation.CacheSize) });
    }

    public void Dispose() => _cache.Dispose();

    /// <summary>Builds the <c>/tokenize</c> request for <paramref name="body"/> on <paramref name="endpoint"/>, or returns null when the body has none.</summary>
    public static BackendCountRequest? Prepare(ReadOnlySpan<byte> body, ModelEndpoint endpoint)
    {
        var tokenize = TokenizeRequestBody(body, endpoint.UpstreamModel);
        return tokenize is null ? null : new BackendCountRequest(endpoint, tokenize, KeyOf(endpoint.Cluster, tokenize));
    }

    /// <summary>Returns whether <paramref name="clusterId"/> failed to count within the last <see cref="FailureBackoff"/>.</summary>
    public bool IsBackingOff(string clusterId) =>
        !_failedUntil.IsEmpty && _failedUntil.TryGetValue(clusterId, out var until) && _time.GetTimestamp() < until;

    /// <summary>Returns the engine's cached count of <paramref name="request"/>, if it has counted the same bytes before.</summary>
    public bool TryGetCached(BackendCountRequest request, out long tokens) => _cache.TryGetValue(request.Key, out tokens);

    /// <summary>
    /// Asks the endpoint's serving engine to count; returns its count, or a result without one when no destination is
    /// available, the call fails or it takes longer than <paramref name="timeout"/>. Requests counting the same bytes at
    /// the same time share one call, which the abort of one of them does not cancel. Never throws for those.
    /// </summary>
    public async Task<BackendPromptCount> CountAsync(BackendCountRequest request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var call = new TaskCompletionSource<long?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var shared = _inFlight.GetOrAdd(request.Key, call.Task);
        if (shared == call.Task)
        {
            _ = CallAsync(request, timeout, call);
        }

        try
        {
            return new BackendPromptCount(request, await shared.WaitAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
            return new BackendPromptCount(request, null);
        }
    }

    // One /tokenize call; the count is cached before the call stops being in flight, so a request that arrives
    // meanwhile finds one or the other.
    private async Task CallAsync(BackendCountRequest request, TimeSpan timeout, TaskCompletionSource<long?> call)
    {
        var endpoint = request.Endpoint;
        long? count = null;
        string? failure = null;
        try
        {
            if (!_proxy.TryGetCluster(endpoint.Cluster, out var cluster) || cluster.DestinationsState.AvailableDestinations is not { Count: > 0 } available)
            {
                failure = "no destination of the cluster is available";
            }
            else
            {
                var destination = available[available.Count == 1 ? 0 : Random.Shared.Next(available.Count)];
                using var content = new ByteArrayContent(request.Body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await _client.SendAsync(cluster, destination, HttpMethod.Post, "tokenize", content, timeout, CancellationToken.None);
                count = response.IsSuccessStatusCode ? ReadCount(await response.Content.ReadAsByteArrayAsync()) : null;
                failure = count is not null ? null
                    : response.IsSuccessStatusCode ? $"{destination.Model.Config.Address} answered without a count"
                    : $"{destination.Model.Config.Address} answered {(int)response.StatusCode}";
            }
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException or OperationCanceledException or InvalidOperationException)
        {
            failure = e.Message;
        }
        finally
        {
            if (count is { } tokens)
            {
                _cache.Set(request.Key, tokens, new MemoryCacheEntryOptions { Size = 1 });
                Log.Counted(_logger, endpoint.Id.Value, endpoint.Cluster, tokens);
            }
            else
            {
                _failedUntil[endpoint.Cluster] = _time.GetTimestamp() + (long)(FailureBackoff.TotalSeconds * _time.TimestampFrequency);
                Log.CountFailed(_logger, endpoint.Id.Value, endpoint.Cluster, LogValue.Sanitize(failure), (int)FailureBackoff.TotalSeconds);
            }

            _inFlight.TryRemove(new KeyValuePair<CountKey, Task<long?>>(request.Key, call.Task));
            call.TrySetResult(count);
        }
    }

    /// <summary>Reads <c>count</c> from a <c>/tokenize</c> answer (<c>{"count": N, "max_model_len": M, "tokens": […]}</c>).</summary>
    internal static long? ReadCount(ReadOnlySpan<byte> answer)
    {
        try
        {
            var reader = new Utf8JsonReader(answer);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isCount = reader.ValueTextEquals("count"u8);
                reader.Read();
                if (isCount)
                {
                    return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var count) && count >= 0 ? count : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    /// <summary>
    /// The <c>/tokenize</c> request body for a validated OpenAI request body, or null when it has none: the upstream
    /// model, then the counted members' values as the client sent them (the last of a duplicated member, as the engine
    /// reads it).
    /// </summary>
    internal static byte[]? TokenizeRequestBody(ReadOnlySpan<byte> body, string upstreamModel)
    {
        var members = new Range[s_copied.Length];
        var found = new bool[s_copied.Length];
        try
        {
            // The single pass accepted the body; its nesting may go deeper than the reader's default of 64.
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 4096 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var index = -1;
                for (var i = 0; i < s_copied.Length && index < 0; i++)
                {
                    if (reader.ValueTextEquals(s_copied[i]))
                    {
                        index = i;
                    }
                }

                reader.Read();
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                if (index >= 0)
                {
                    members[index] = start..(int)reader.BytesConsumed;
                    found[index] = true;
                }
            }
        }
        catch (JsonException)
        {
            return null;
        }

        var chat = found[Messages];
        if (chat ? body[members[Messages]][0] != '[' || HasMediaParts(body[members[Messages]])
            : !found[Prompt] || body[members[Prompt]][0] != '"')
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>(body.Length + upstreamModel.Length + 32);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("model"u8, upstreamModel);
            for (var i = 0; i < s_copied.Length; i++)
            {
                if (found[i] && (chat ? i != Prompt : i is Prompt or AddSpecialTokens))
                {
                    writer.WritePropertyName(s_copied[i]);
                    writer.WriteRawValue(body[members[i]], skipInputValidation: true);
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private const int Messages = 0;
    private const int Prompt = 1;
    private const int AddSpecialTokens = 2;

    // The members copied into the request: what the engine counts, and what changes how its chat template renders.
    private static readonly byte[][] s_copied =
    [
        "messages"u8.ToArray(), "prompt"u8.ToArray(), "add_special_tokens"u8.ToArray(), "tools"u8.ToArray(), "add_generation_prompt"u8.ToArray(),
        "continue_final_message"u8.ToArray(), "chat_template"u8.ToArray(), "chat_template_kwargs"u8.ToArray(),
    ];

    // Whether any "type" in the messages names something other than text or a function call: an image, audio or file
    // part, which the engine would fetch or decode to count.
    private static bool HasMediaParts(ReadOnlySpan<byte> messages)
    {
        var reader = new Utf8JsonReader(messages, new JsonReaderOptions { MaxDepth = 4096 });
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !(reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("function"u8)))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static CountKey KeyOf(string cluster, byte[] tokenize)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes(cluster.ToUpperInvariant()));
        hash.AppendData([0]);
        hash.AppendData(tokenize);
        Span<byte> digest = stackalloc byte[32];
        hash.GetHashAndReset(digest);
        return new CountKey(
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest[16..]));
    }

    /// <summary>A cache key: the SHA-256 of the cluster id and the <c>/tokenize</c> request bytes.</summary>
    internal readonly record struct CountKey(UInt128 Low, UInt128 High);

    private static partial class Log
    {
        [LoggerMessage(130, LogLevel.Debug, "Endpoint '{Endpoint}' (cluster '{Cluster}') counted the prompt near a limit: {Tokens} tokens.", EventName = "BackendCounted")]
        public static partial void Counted(ILogger logger, string endpoint, string cluster, long tokens);

        [LoggerMessage(131, LogLevel.Warning, "Endpoint '{Endpoint}' (cluster '{Cluster}') could not count a prompt with POST /tokenize ({Reason}); deciding on the local count with the margin, and not asking this cluster for {Seconds} s.", EventName = "BackendCountFailed")]
        public static partial void CountFailed(ILogger logger, string endpoint, string cluster, string reason, int seconds);
    }
}

/// <summary>A <c>/tokenize</c> call the request path waits for: the endpoint, the request bytes and their cache key.</summary>
internal sealed class BackendCountRequest(ModelEndpoint endpoint, byte[] body, BackendPromptCounter.CountKey key)
{
    public ModelEndpoint Endpoint { get; } = endpoint;

    public byte[] Body { get; } = body;

    public BackendPromptCounter.CountKey Key { get; } = key;

    /// <summary>Whether this request counts for <paramref name="endpoint"/> (the same cluster and upstream model).</summary>
    public bool IsFor(ModelEndpoint? endpoint) =>
        endpoint is not null && (ReferenceEquals(endpoint, Endpoint)
            || (endpoint.Id == Endpoint.Id && string.Equals(endpoint.Cluster, Endpoint.Cluster, StringComparison.OrdinalIgnoreCase)
                && string.Equals(endpoint.UpstreamModel, Endpoint.UpstreamModel, StringComparison.Ordinal)));
}

/// <summary>The outcome of a <c>/tokenize</c> call: the engine's count, or null when it could not count.</summary>
internal sealed record BackendPromptCount(BackendCountRequest Request, long? Tokens);
