using ModelRouting.Configuration;
using ModelRouting.Registry;

namespace ModelRouting.Inspection;

/// <summary>
/// Counts a request's prompt exactly for the endpoint that decides it (SPEC §18): a refusal, a context fallback or
/// an estimate near a limit is decided on this count.
/// </summary>
/// <remarks>
/// <see cref="PromptTokenEstimator.ExactCounterFor"/> chooses the counter per endpoint; today that is always
/// <see cref="LocalExactPromptCounter"/> (the endpoint's tiktoken encoding). <c>TokenEstimation:Mode: Backend</c>
/// (planned, not yet available) would add one that asks the endpoint's serving engine (<c>POST /tokenize</c>);
/// being an HTTP call, it will need an asynchronous path through the middleware's decision. Implementations must be
/// thread-safe.
/// </remarks>
internal interface IExactPromptCounter
{
    /// <summary>Counts the prompt from the string ranges the single pass recorded, plus its fixed tokens; no second parse.</summary>
    long CountPrompt(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint);
}
