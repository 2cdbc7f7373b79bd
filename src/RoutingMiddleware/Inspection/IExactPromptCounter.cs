using ModelRouting.Configuration;
using ModelRouting.Registry;

namespace ModelRouting.Inspection;

/// <summary>
/// Counts a request's prompt exactly for the endpoint that decides it (SPEC §18): a refusal, a context fallback or
/// an estimate near a limit is decided on this count.
/// </summary>
/// <remarks>
/// <see cref="PromptTokenEstimator.ExactCounterFor"/> chooses the local counter per endpoint
/// (<see cref="LocalExactPromptCounter"/>, the endpoint's tiktoken encoding). Backend mode's count is an HTTP call, so it
/// is not one of these: <see cref="PromptTokenEstimator.TryCountExactly"/> hands the request path a
/// <see cref="BackendCountRequest"/> to await (<see cref="BackendPromptCounter"/>). Implementations must be thread-safe.
/// </remarks>
internal interface IExactPromptCounter
{
    /// <summary>Counts the prompt from the string ranges the single pass recorded, plus its fixed tokens; no second parse.</summary>
    long CountPrompt(TokenEstimationOptions settings, ReadOnlySpan<byte> body, ReadOnlySpan<TextRange> ranges, in ParsedRequest parsed, ModelEndpoint? endpoint);
}
