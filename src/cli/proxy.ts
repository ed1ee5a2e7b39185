export async function proxyCommand(_argv: string[]): Promise<void> {
  throw new Error('the signing proxy is not built yet');
}
