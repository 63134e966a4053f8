import { MemoryBackplane } from '../src/backplane/memory_backplane.ts';
import { backplaneContract, CONTRACT_HISTORY } from './backplane_contract.ts';

backplaneContract('memory', async () => ({
  backplane: new MemoryBackplane({ history: CONTRACT_HISTORY }),
  cleanup: async () => {},
}));
