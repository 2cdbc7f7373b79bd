using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// A vLLM-shaped backend on a loopback port whose <c>POST /tokenize</c> counts with a tokenizer deliberately unlike
/// o200k: one token per <see cref="CharsPerToken"/> characters (rounded up) of each message's <c>content</c> (or of the
/// <c>prompt</c>), plus <see cref="TemplateTokens"/> per message for its "chat template". It answers vLLM's shape,
/// <c>{"count", "max_model_len", "tokens"}</c>; chat completions get the default test answer. <see cref="Delay"/> holds
/// every count, <see cref="FailWith"/> fails it.
/// </summary>
internal sealed class FakeTokenizingVllm : IAsyncDisposable
{
    public const int TemplateTokens = 5;

    private TestBackend _backend = null!;

    public int CharsPerToken { get; set; } = 1;

    public TimeSpan Delay { get; set; }

    public int? FailWith { get; set; }

    public string Url => _backend.Url;

    /// <summary>Gets every request received.</summary>
    public ConcurrentQueue<RecordedRequest> Requests => _backend.Requests;

    public IReadOnlyList<RecordedRequest> Tokenizes => [.. Requests.Where(r => r.Path == "/tokenize")];

    public IReadOnlyList<RecordedRequest> Forwarded => [.. Requests.Where(r => r.Path != "/tokenize")];

    public static async Task<FakeTokenizingVllm> StartAsync()
    {
        var vllm = new FakeTokenizingVllm();
        vllm._backend = await TestBackend.StartAsync("vllm", vllm.HandleAsync);
        return vllm;
    }

    /// <summary>What this tokenizer counts for a chat request's messages.</summary>
    public long CountMessages(JsonArray messages) =>
        messages.Sum(m => TemplateTokens + Tokens(m!["content"]!.GetValue<string>()));

    public long Tokens(string text) => (text.Length + CharsPerToken - 1) / CharsPerToken;

    public ValueTask DisposeAsync() => _backend.DisposeAsync();

    private async Task HandleAsync(HttpContext context, RecordedRequest request)
    {
        if (request.Path != "/tokenize")
        {
            await context.Response.WriteAsJsonAsync(new { id = "chatcmpl-test", @object = "chat.completion", model = request.Model, choices = Array.Empty<object>() });
            return;
        }

        if (Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (FailWith is { } status)
        {
            context.Response.StatusCode = status;
            await context.Response.WriteAsJsonAsync(new { error = new { message = "tokenizer unavailable" } });
            return;
        }

        var body = JsonNode.Parse(request.Body)!;
        var count = body["messages"] is JsonArray messages ? CountMessages(messages) : Tokens(body["prompt"]!.GetValue<string>());
        await context.Response.WriteAsJsonAsync(new { count, max_model_len = 40960, tokens = Enumerable.Range(0, (int)Math.Min(count, 50_000)).ToArray() });
    }
}
