/** One account's balance as a snapshot reads it: the leaf both the serial and the parallel tree hash. */
export interface BalanceRow {
  account: string;
  balance: number;
}
