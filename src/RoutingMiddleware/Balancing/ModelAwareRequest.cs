using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Http;
using ModelRouting.Registry;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Balancing;

/// <summary>
/// The per-request signals of the <c>ModelAware</c> policy (an <see cref="HttpContext"/> feature): the chained
/// hashes of the prompt's leading text in fixed blocks, the estimated prompt tokens, the adapter of the resolved
/// endpoint, and the lease on the destination's in-flight token count, released when the request ends or when a
/// failover attempt picks again.
/// </summary>
/// <remarks>
/// The prompt is not tokenized: the body's bytes from its <c>"messages"</c> (or <c>"prompt"</c>, <c>"input"</c>)
/// member on are hashed in <see cref="BlockBytes"/>-byte blocks, each hash seeded with the previous one, so two
/// requests share a block hash exactly when they share all the text up to that block's end. At most
/// <see cref="MaxBlocks"/> blocks are hashed.
/// </remarks>
internal sealed class ModelAwareRequest : IDisposable
{
    /// <summary>The bytes of prompt text per hashed block.</summary>
    public const int BlockBytes = 256;

    /// <summary>The most blocks hashed per request (the leading 32 KiB).</summary>
    public const int MaxBlocks = 128;

    private ulong[]? _blocks;
    private DestinationSignals? _lease;
    private long _leaseTokens;

    private ModelAwareRequest(ulong[]? blocks, int blockCount, long promptBytes, long promptTokens, string? adapter)
    {
        _blocks = blocks;
        BlockCount = blockCount;
        PromptBytes = promptBytes;
        PromptTokens = promptTokens;
        Adapter = adapter;
        AdapterHash = adapter is null ? 0 : XxHash3.HashToUInt64(MemoryMarshal.AsBytes(adapter.AsSpan()), 0x5AD0_7E12);
    }

    public int BlockCount { get; }

    public ReadOnlySpan<ulong> Blocks => _blocks is null ? [] : _blocks.AsSpan(0, BlockCount);

    /// <summary>Gets the prompt's length in bytes, from where hashing starts to the body's end.</summary>
    public long PromptBytes { get; }

    public long PromptTokens { get; }

    /// <summary>Gets the adapter the endpoint serves (the vLLM LoRA name), or null.</summary>
    public string? Adapter { get; }

    public ulong AdapterHash { get; }

    /// <summary>
    /// Sets the feature for a request routed to <paramref name="endpoint"/> when its cluster balances with
    /// <c>ModelAware</c>; otherwise does nothing. Called once per request by the routing middleware.
    /// </summary>
    public static void Attach(HttpContext context, ModelEndpoint endpoint, long promptTokens, ReadOnlySpan<byte> body)
    {
        if (!string.Equals(context.GetReverseProxyFeature().Cluster.Config.LoadBalancingPolicy, ModelAwarePolicy.PolicyName, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var request = Create(body, promptTokens, endpoint.Adapter is not null && endpoint.Adapters is null ? endpoint.UpstreamModel : null);
        context.Features.Set(request);
        context.Response.RegisterForDispose(request);
    }

    /// <summary>Hashes <paramref name="body"/>'s prompt blocks.</summary>
    public static ModelAwareRequest Create(ReadOnlySpan<byte> body, long promptTokens, string? adapter)
    {
        var start = PromptStart(body);
        var prompt = body[start..];
        var count = Math.Min(MaxBlocks, prompt.Length / BlockBytes);
        ulong[]? blocks = null;
        if (count > 0)
        {
            blocks = ArrayPool<ulong>.Shared.Rent(count);
            ulong hash = 0;
            for (var i = 0; i < count; i++)
            {
                hash = XxHash3.HashToUInt64(prompt.Slice(i * BlockBytes, BlockBytes), (long)hash);
                blocks[i] = hash;
            }
        }

        return new ModelAwareRequest(blocks, count, prompt.Length, promptTokens, adapter);
    }

    /// <summary>A request the middleware did not describe (not inspected, or a fallback cluster): in-flight counting only.</summary>
    public static ModelAwareRequest Bare() => new(null, 0, 0, 0, null);

    /// <summary>Counts <paramref name="tokens"/> against <paramref name="destination"/>, releasing any earlier pick's count.</summary>
    public void Assign(DestinationSignals destination, long tokens)
    {
        Release();
        destination.AddInFlight(tokens);
        _leaseTokens = tokens;
        _lease = destination;
    }

    public void Release()
    {
        var lease = Interlocked.Exchange(ref _lease, null);
        lease?.AddInFlight(-_leaseTokens);
    }

    public void Dispose()
    {
        Release();
        var blocks = Interlocked.Exchange(ref _blocks, null);
        if (blocks is not null)
        {
            ArrayPool<ulong>.Shared.Return(blocks);
        }
    }

    // Where the prompt starts: the first "messages", "prompt" or "input" member name; else the body's start.
    private static int PromptStart(ReadOnlySpan<byte> body)
    {
        var at = body.IndexOf("\"messages\""u8);
        if (at < 0)
        {
            at = body.IndexOf("\"prompt\""u8);
        }

        if (at < 0)
        {
            at = body.IndexOf("\"input\""u8);
        }

        return Math.Max(0, at);
    }
}
