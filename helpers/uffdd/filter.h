/* Constants policy/uffdd.policy names (its generated C includes this header alone). */
#ifndef FCVM_UFFDD_FILTER_H
#define FCVM_UFFDD_FILTER_H

#define UFFDD_READ_MSGS	 64   /* struct uffd_msg per read() of a userfaultfd */
#define UFFDD_READ_BYTES 2048 /* UFFDD_READ_MSGS * sizeof(struct uffd_msg): the one size read() is allowed */

#endif
