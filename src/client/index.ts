export { KernelgateClient, requestTarget, type ClientOptions, type RequestOptions } from './client.js';
export { signRequest, LATEST_API_VERSION, type SignRequestInput, type SignedRequest } from '../signing/sign-request.js';
