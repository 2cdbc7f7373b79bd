using System.Globalization;
using System.Text;
using System.Text.Json;
using FleetSim;

// A simulated fleet of vLLM replicas, one per port given with --ports (README "Fleet simulator"): each serves
// POST /v1/chat/completions (streaming or not), GET /metrics in vLLM's names and GET /v1/models.
//   dotnet FleetSim.dll --ports 9001,9002,9003,9004 [--Seed 1] [--BatchLimit 16] ...
var parameters = SimParameters.FromArgs(args, out var ports);
if (ports.Count == 0)
{
    Console.Error.WriteLine("usage: FleetSim --ports p1,p2,... [--Parameter value ...]");
    return 2;
}

var replicas = ports.Select((port, i) => (port, replica: new Replica(i, parameters))).ToDictionary(p => p.port, p => p.replica);
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    foreach (var port in ports)
    {
        kestrel.Listen(System.Net.IPAddress.Loopback, port);
    }
});
var app = builder.Build();
string[] words = ["alpha", "beta", "gamma", "delta", "kappa", "lambda", "omega", "sigma", "theta", "zeta", "eta", "iota", "rho", "tau", "phi", "psi"];

app.MapGet("/metrics", (HttpContext context) => Results.Text(replicas[context.Connection.LocalPort].Metrics(), "text/plain; version=0.0.4"));
app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = new[] { new { id = parameters.BaseModel, @object = "model" } } }));
app.MapPost("/v1/chat/completions", async (HttpContext context) =>
{
    var replica = replicas[context.Connection.LocalPort];
    using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
    var root = body.RootElement;
    var model = root.TryGetProperty("model", out var m) ? m.GetString() ?? parameters.BaseModel : parameters.BaseModel;
    var maxTokens = root.TryGetProperty("max_tokens", out var mt) ? Math.Max(1, mt.GetInt32()) : 16;
    var stream = root.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
    var prompt = new StringBuilder();
    if (root.TryGetProperty("messages", out var messages))
    {
        foreach (var message in messages.EnumerateArray())
        {
            prompt.Append(message.GetProperty("role").GetString()).Append(':').Append(message.GetProperty("content").GetString()).Append('\n');
        }
    }

    var text = prompt.ToString();
    var tokens = Math.Max(1, (text.Length + parameters.CharsPerToken - 1) / parameters.CharsPerToken);
    var blockChars = parameters.BlockTokens * parameters.CharsPerToken;
    var blocks = new List<ulong>(text.Length / blockChars);
    var hash = 14695981039346656037UL;
    for (var i = 0; i + blockChars <= text.Length; i += blockChars)
    {
        for (var j = i; j < i + blockChars; j++)
        {
            hash = (hash ^ text[j]) * 1099511628211UL;
        }

        blocks.Add(hash);
    }

    var adapter = model == parameters.BaseModel ? null : model;
    var job = new Job(tokens, blocks, adapter, maxTokens);
    // The reply's words follow from the prompt and the seed only.
    var seed = (ulong)parameters.Seed * 0x9E3779B97F4A7C15UL ^ hash ^ (ulong)text.Length;
    string Word(int i) => words[(int)(((seed + (ulong)i) * 0xBF58476D1CE4E5B9UL) >> 60)] + " ";
    var id = "chatcmpl-sim" + replica.Id.ToString(CultureInfo.InvariantCulture);
    var response = context.Response;
    response.Headers["x-sim-replica"] = replica.Id.ToString(CultureInfo.InvariantCulture);
    if (stream)
    {
        response.ContentType = "text/event-stream";
        try
        {
            await replica.RunAsync(job, async i =>
            {
                var chunk = $"data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{Word(i)}\"}},\"finish_reason\":null}}]}}\n\n";
                await response.WriteAsync(chunk, context.RequestAborted);
                await response.Body.FlushAsync(context.RequestAborted);
            }, context.RequestAborted);
            await response.WriteAsync($"data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"length\"}}],\"usage\":{{\"prompt_tokens\":{tokens},\"completion_tokens\":{maxTokens},\"total_tokens\":{tokens + maxTokens}}}}}\n\ndata: [DONE]\n\n", context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
        }

        return;
    }

    var content = new StringBuilder();
    try
    {
        await replica.RunAsync(job, i =>
        {
            content.Append(Word(i));
            return Task.CompletedTask;
        }, context.RequestAborted);
    }
    catch (OperationCanceledException)
    {
        return;
    }

    await response.WriteAsJsonAsync(new
    {
        id,
        @object = "chat.completion",
        created = 1,
        model,
        choices = new[] { new { index = 0, message = new { role = "assistant", content = content.ToString() }, finish_reason = "length" } },
        usage = new { prompt_tokens = tokens, completion_tokens = maxTokens, total_tokens = tokens + maxTokens },
    });
});

await app.RunAsync();
return 0;
